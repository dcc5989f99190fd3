/**
 * The Docker daemon restarts under a ready sandbox (its container stops with the
 * daemon): the next call recovers on a new container with /workspace intact.
 * Restarts the local dockerd (tests/support/dockerd.ts), which stops every
 * container on the engine, so it is not picked up by `bun test`: scripts/test.sh
 * (the README's test command, also CI's) runs it on its own, after the rest.
 */
import { afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { restartDockerd } from "../support/dockerd.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { STDIN_CREDENTIALS_OPTIONS, startWithStdinLine } from "../../src/bay/drivers/docker/stdin-credentials.ts";
import { containersOf, docker, newSandbox, py, requireShipImages } from "../e2e/support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";

setDefaultTimeout(240_000);

let t: TestBay | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});
beforeAll(() => requireShipImages());

test("after a dockerd restart the next call starts a new container and the data is intact", async () => {
  t = await createTestBay();
  const id = await newSandbox(t);
  expect((await py(t, id, "open('/workspace/before-restart.txt','w').write('persisted')")).body.success).toBe(true);
  const [before] = await containersOf(t, id);
  expect(before?.state).toBe("running");

  await restartDockerd();

  const r = await py(t, id, "print(open('/workspace/before-restart.txt').read())");
  expect(r.status).toBe(200);
  expect(r.body.output).toContain("persisted");
  const after = await containersOf(t, id);
  expect(after).toHaveLength(1);
  expect(after[0]!.id).not.toBe(before!.id);
  expect(after[0]!.state).toBe("running");
  expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");
  // Nothing is left for reconcile to repair.
  const rep = await t.bay.reconciler.runOnce();
  expect(rep).toMatchObject({ deadSessions: 0, orphanContainers: 0, errors: 0 });
});

/**
 * The attack of issue 11: after an engine restart, host ports are handed out
 * again from the bottom of the range, while the database still names the old
 * endpoints of `ready` sessions. Here the test forces the worst case: right
 * after the restart, before Bay reconciles anything, it starts real Ship
 * containers of its own (with secrets Bay does not know) on exactly the two old
 * ports, crossed over. Each owner's next call must land in its own, new
 * sandbox container, with its own data, and never run in a squatter.
 */
test("after a restart, Ships squatting on two sandboxes' old ports receive no call; each owner lands in its own sandbox", async () => {
  t = await createTestBay();
  const alice = await t.json("POST", "/v1/sandboxes", { owner: "alice", body: {} });
  const bob = await t.json("POST", "/v1/sandboxes", { owner: "bob", body: {} });
  const write = (owner: string, id: string, text: string) =>
    t!.json("POST", `/v1/sandboxes/${id}/shell/exec`, { owner, body: { command: `echo ${text} > /workspace/whose.txt; echo ok` } });
  expect((await write("alice", alice.body.id, "alice-data")).body.output).toBe("ok\n");
  expect((await write("bob", bob.body.id, "bob-data")).body.output).toBe("ok\n");
  const portOf = async (id: string) => Number(new URL((await t!.bay.deps.stores.sandboxes.get(id))!.session!.endpoint!).port);
  const [alicePort, bobPort] = [await portOf(alice.body.id), await portOf(bob.body.id)];

  await restartDockerd();

  // Squatters: Bob's old port gets a Ship whose workspace says "squatter", and Alice's too.
  const squatters: Array<{ remove(): Promise<void>; id: string }> = [];
  try {
    for (const port of [alicePort, bobPort]) {
      squatters.push(await startSquatter(port));
    }
    const ra = await t.json("POST", `/v1/sandboxes/${alice.body.id}/shell/exec`, {
      owner: "alice",
      body: { command: "cat /workspace/whose.txt" },
    });
    const rb = await t.json("POST", `/v1/sandboxes/${bob.body.id}/shell/exec`, {
      owner: "bob",
      body: { command: "cat /workspace/whose.txt" },
    });
    expect([ra.status, ra.body.output]).toEqual([200, "alice-data\n"]);
    expect([rb.status, rb.body.output]).toEqual([200, "bob-data\n"]);
    // The squatters ran nothing: their workspaces are as they started.
    for (const s of squatters) {
      const log = await docker.getContainer(s.id).logs({ stdout: true, stderr: true });
      expect(String(log)).not.toContain("whose.txt");
      const exec = await docker.getContainer(s.id).exec({ Cmd: ["cat", "/workspace/whose.txt"], AttachStdout: true, AttachStderr: true });
      const out = await new Promise<string>((resolve) => {
        void exec.start({}).then((stream) => {
          let text = "";
          stream.on("data", (d: Buffer) => (text += d.toString()));
          stream.on("end", () => resolve(text));
        });
      });
      expect(out).toContain("squatter");
    }
  } finally {
    for (const s of squatters) await s.remove();
  }
});

/** A real Ship container with its own secret (unknown to Bay), published on `port`, its workspace marked "squatter". */
async function startSquatter(port: number): Promise<{ id: string; remove(): Promise<void> }> {
  const c = await docker.createContainer({
    Image: SHIP_IMAGE,
    Env: ["SHIP_CREDENTIALS=stdin"],
    Labels: { "bay.test": "squatter" },
    ExposedPorts: { "8123/tcp": {} },
    HostConfig: { PortBindings: { "8123/tcp": [{ HostIp: "127.0.0.1", HostPort: String(port) }] } },
    Entrypoint: ["/bin/sh", "-c", "echo squatter > /workspace/whose.txt; exec /usr/bin/tini -- /usr/local/bin/ship"],
    ...STDIN_CREDENTIALS_OPTIONS,
  });
  const remove = async () => void (await c.remove({ force: true, v: true }).catch(() => {}));
  try {
    await startWithStdinLine(docker, c.id, JSON.stringify({ session_id: "sess-squatter", secret: "s".repeat(43) }));
    for (let i = 0; i < 100; i++) {
      if (
        await fetch(`http://127.0.0.1:${port}/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await Bun.sleep(100);
    }
  } catch (e) {
    await remove();
    throw e;
  }
  return { id: c.id, remove };
}
