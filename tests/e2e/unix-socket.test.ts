/**
 * connect_mode unix_socket on real Docker: Bay reaches each Ship through a Unix
 * socket in a per-container host directory (src/bay/drivers/docker/runtime-socket.ts)
 * instead of a published port: no port on the host, no engine port proxy in
 * the path. Everything through it (exec, files, upload and download, terminal
 * WebSocket); the directory sealed against the sandbox's own code (which can
 * neither remove the socket nor plant a link beside it); cleanup on stop and by
 * reconcile; and a runtime that never opens its socket fails its start cleanly.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RuntimeSockets, SWEEP_GRACE_MS } from "../../src/bay/drivers/docker/runtime-socket.ts";
import { defaultProfiles } from "../../src/bay/config.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { SHIP_TAG } from "../support/images.ts";
import { EventReader, streamText } from "../support/sse.ts";
import { TerminalClient } from "../support/terminal-client.ts";
import { ensureMetaImage, META_IMAGE, META_PORT } from "./support/docker-fixtures.ts";
import { containersOf, docker, profiles, requireShipImages, uploadForm } from "./support/e2e.ts";
import { type ServedBay, serveBay } from "./support/serve.ts";

let t: TestBay;
let served: ServedBay;
let socketDir: string;
/** This installation's directory under socket_dir. */
let root: string;

beforeAll(async () => {
  await requireShipImages();
  await ensureMetaImage(docker);
  socketDir = join(mkdtempSync(join(tmpdir(), "bay-sockets-")), "ships");
  t = await createTestBay({
    config: {
      driver: { connect_mode: "unix_socket", socket_dir: socketDir, call_timeout: 8 },
      // A fake Ship that serves no socket (it knows nothing of SHIP_SOCKET).
      profiles: [
        ...defaultProfiles(SHIP_TAG),
        ...profiles({ id: "no-socket", image: META_IMAGE, runtime_port: META_PORT, capabilities: ["python"], env: {} }),
      ] as never,
    },
  });
  served = serveBay(t);
  root = join(socketDir, `bay-${t.bay.instanceId}`);
});
afterAll(async () => {
  await served?.stop();
  await t?.close();
});

const ALICE = { owner: "alice" } as const;

async function sessionOf(id: string) {
  return (await t.bay.deps.stores.sandboxes.get(id))!.session!;
}

describe("unix_socket mode", () => {
  test("exec, files, upload, download and the terminal all go through the socket; no port is published", async () => {
    const id = (await t.json("POST", "/v1/sandboxes", { ...ALICE, body: {} })).body.id as string;
    const r = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { ...ALICE, body: { code: "x = 6 * 7\nx" } });
    expect(r.body).toMatchObject({ success: true });
    expect(r.body.output.trim()).toBe("42");
    const session = await sessionOf(id);
    expect(session.endpoint!.startsWith(`unix:${root}/`)).toBe(true);
    const [container] = await containersOf(t, id);
    const info = await docker.getContainer(container!.id).inspect();
    expect(info.HostConfig.PortBindings ?? {}).toEqual({});
    expect(
      Object.values(info.NetworkSettings.Ports ?? {})
        .flat()
        .filter(Boolean),
    ).toEqual([]);
    // The root is Bay's alone; the container's directory is sealed (no write for anyone but Bay).
    expect(statSync(root).mode & 0o777).toBe(0o700);
    const dir = join(root, info.Name.replace(/^\//, ""));
    expect(statSync(dir).mode & 0o777).toBe(0o711);

    const sh = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { ...ALICE, body: { command: "echo hi-$((1+1))" } });
    expect(sh.body.output ?? sh.body.stdout).toContain("hi-2");
    expect(
      (await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { ...ALICE, body: { path: "a.txt", content: "alpha" } })).status,
    ).toBe(200);
    const read = await t.json("GET", `/v1/sandboxes/${id}/filesystem/files?path=a.txt`, ALICE);
    expect(read.body.content).toBe("alpha");
    const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    const up = await t.call("POST", `/v1/sandboxes/${id}/filesystem/upload`, { ...ALICE, body: uploadForm("big.bin", bytes) });
    expect(up.status).toBe(200);
    const down = await t.call("GET", `/v1/sandboxes/${id}/filesystem/download?path=big.bin`, ALICE);
    expect(down.status).toBe(200);
    expect(Buffer.from(await down.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);

    // A streamed exec: its events come through the socket as they happen.
    const streamed = await t.call("POST", `/v1/sandboxes/${id}/python/exec`, {
      ...ALICE,
      body: { code: "import time\nprint('one', flush=True)\ntime.sleep(0.3)\nprint('two')\n7" },
      headers: { accept: "text/event-stream" },
    });
    expect(streamed.headers.get("content-type")).toContain("text/event-stream");
    const events = new EventReader(streamed);
    const all = await events.rest();
    expect(streamText(all, "stdout")).toBe("one\ntwo\n");
    expect(all.at(-1)?.event).toBe("result");
    expect(all.at(-1)?.data).toMatchObject({ success: true, output: "one\ntwo\n7\n" });

    const term = await TerminalClient.open(`${served.ws}/v1/sandboxes/${id}/terminal`, { headers: { "x-owner": "alice" } });
    term.type("echo term-$((20+22))\n");
    await term.waitFor(/term-42/, 30_000);
    term.type("exit 0\n");
    expect((await term.closed).code).toBe(1000);

    // Stopped: the container is gone and so is its directory.
    expect((await t.json("POST", `/v1/sandboxes/${id}/stop`, ALICE)).status).toBe(200);
    expect(existsSync(dir)).toBe(false);
    await t.json("DELETE", `/v1/sandboxes/${id}`, ALICE);
  });

  test("code in the sandbox can neither remove the socket nor plant a link beside it; Bay goes on", async () => {
    const id = (await t.json("POST", "/v1/sandboxes", { ...ALICE, body: {} })).body.id as string;
    try {
      expect((await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { ...ALICE, body: { code: "1" } })).body.success).toBe(true);
      const [container] = await containersOf(t, id);
      const dir = join(root, container!.name);
      const attack = [
        "cd /run/bay-ship",
        "rm -f ship.sock 2>&1",
        "mv ship.sock moved.sock 2>&1",
        "ln -s /var/run/docker.sock evil.sock 2>&1",
        "ln ship.sock hard.sock 2>&1",
        "chmod 777 . 2>&1",
        "ls . 2>&1",
        "echo done",
      ].join("; ");
      const r = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { ...ALICE, body: { command: attack } });
      const out = `${r.body.output ?? ""}${r.body.stdout ?? ""}${r.body.stderr ?? ""}`;
      expect(out).toContain("done");
      expect(out.match(/Permission denied|Operation not permitted/g)?.length).toBeGreaterThanOrEqual(5);
      // Seen from the host: the socket alone, still a socket, in a directory still sealed.
      expect(readdirSync(dir)).toEqual(["ship.sock"]);
      expect(lstatSync(join(dir, "ship.sock")).isSocket()).toBe(true);
      expect(statSync(dir).mode & 0o777).toBe(0o711);
      const after = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { ...ALICE, body: { code: "1+1" } });
      expect(after.body.success).toBe(true);
      expect(after.body.output.trim()).toBe("2");
    } finally {
      await t.json("DELETE", `/v1/sandboxes/${id}`, ALICE);
    }
  });

  test("a runtime that never opens its socket fails its start: 503, no container and no directory left", async () => {
    const id = (await t.json("POST", "/v1/sandboxes", { ...ALICE, body: { profile: "no-socket" } })).body.id as string;
    const r = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { ...ALICE, body: { code: "1" } });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe("session_not_ready");
    expect(await containersOf(t, id)).toEqual([]);
    expect(readdirSync(root)).toEqual([]);
    await t.json("DELETE", `/v1/sandboxes/${id}`, ALICE);
  });

  test("reconcile sweeps directories whose container is gone, once past the grace period", async () => {
    const stale = join(root, "bay-sandbox-gone-abcdefgh");
    const fresh = join(root, "bay-sandbox-new-abcdefgh");
    mkdirSync(stale);
    mkdirSync(fresh);
    const old = (Date.now() - SWEEP_GRACE_MS - 60_000) / 1000;
    utimesSync(stale, old, old);
    await t.bay.reconciler.runOnce();
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });
});

/**
 * Found by the security review: with the socket directory owned by the sandbox's
 * own uid (Bay running as uid 1000, or a runtime image whose user is Bay's), a
 * chmod seals nothing: the owner may write again, fake the seal for Ship, and
 * swap the socket for a link to any socket on the host. Bay must refuse such a
 * runtime before it hands out an endpoint. Simulated as the review did: Bay as
 * root, the directory given to uid 1000 right after it is made.
 */
describe("unix_socket mode, directory owned by the sandbox's user", () => {
  const origCreate = RuntimeSockets.prototype.create;
  let t2: TestBay;
  let root2: string;
  beforeAll(async () => {
    RuntimeSockets.prototype.create = function (name: string) {
      const dir = origCreate.call(this, name);
      chownSync(dir, 1000, 1000);
      return dir;
    };
    const base = join(mkdtempSync(join(tmpdir(), "bay-sockets-")), "ships");
    t2 = await createTestBay({ config: { driver: { connect_mode: "unix_socket", socket_dir: base, call_timeout: 8 } } });
    root2 = join(base, `bay-${t2.bay.instanceId}`);
  });
  afterAll(async () => {
    RuntimeSockets.prototype.create = origCreate;
    await t2?.close();
  });

  test("the start is refused (502 ship_error, socket_invalid): no endpoint, no container, no directory left", async () => {
    const id = (await t2.json("POST", "/v1/sandboxes", { body: {} })).body.id as string;
    const r = await t2.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "chmod 555 /run/bay-ship; echo ran" } });
    expect(r.status).toBe(502);
    expect(r.body.error).toMatchObject({ code: "ship_error", details: { reason: "socket_invalid" } });
    expect(await containersOf(t2, id)).toEqual([]);
    expect(readdirSync(root2)).toEqual([]);
    await t2.json("DELETE", `/v1/sandboxes/${id}`);
  });
});

describe("unix_socket mode with a warm pool", () => {
  let t3: TestBay;
  beforeAll(async () => {
    const base = join(mkdtempSync(join(tmpdir(), "bay-sockets-")), "ships");
    t3 = await createTestBay({
      config: {
        driver: { connect_mode: "unix_socket", socket_dir: base },
        profiles: defaultProfiles(SHIP_TAG).map((p) =>
          p.id === "python-default" ? { ...p, warm_pool: { size: 1, max_age_seconds: 3600 } } : p,
        ),
      } as never,
    });
  });
  afterAll(async () => {
    await t3?.close();
  });

  test("a pool member is started and sealed like any session; the claim answers ready and runs on the socket", async () => {
    t3.bay.pool.start();
    for (let i = 0; i < 300 && t3.bay.pool.size("python-default") < 1; i++) await Bun.sleep(100);
    expect(t3.bay.pool.size("python-default")).toBe(1);
    const created = await t3.json("POST", "/v1/sandboxes", { body: {} });
    expect(created.body.status).toBe("ready");
    const r = await t3.json("POST", `/v1/sandboxes/${created.body.id}/python/exec`, { body: { code: "2**10" } });
    expect(r.body.output.trim()).toBe("1024");
    expect((await t3.bay.deps.stores.sandboxes.get(created.body.id))!.session!.endpoint!.startsWith("unix:")).toBe(true);
    await t3.json("DELETE", `/v1/sandboxes/${created.body.id}`);
  });
});
