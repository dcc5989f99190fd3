/**
 * Crash safety on real Docker: a killed container is replaced on the next call
 * with /workspace intact; reconcile ends sessions whose container died; and a
 * Bay killed with SIGKILL while it creates a container leaves no orphan once it
 * restarts on the same database and the dead starter's lease lapses.
 */
import { createClient } from "@libsql/client";
import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { createTestBay, uniqueInstanceId, type TestBay } from "../support/harness.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { containersOf, docker, newSandbox, py, requireShipImages } from "./support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";

// Real containers on a shared, noisy machine.
setDefaultTimeout(120_000);

let t: TestBay | null = null;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await t?.close();
  t = null;
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
beforeAll(() => requireShipImages());

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await Bun.sleep(stepMs);
  }
}

/** Containers of a sandbox under an instance, asked of Docker directly (running or not). */
const labelled = (instanceId: string, sandboxId: string) =>
  docker.listContainers({ all: true, filters: { label: [`bay.instance_id=${instanceId}`, `bay.sandbox_id=${sandboxId}`] } });

describe("container crash", () => {
  test("docker kill of a ready sandbox's container: the next exec runs on a new container, /workspace intact", async () => {
    t = await createTestBay();
    const id = await newSandbox(t);
    expect((await py(t, id, "open('/workspace/data.txt','w').write('survives')")).body.success).toBe(true);
    const [before] = await containersOf(t, id);
    await docker.getContainer(before!.id).kill();

    const r = await py(t, id, "print(open('/workspace/data.txt').read())");
    expect(r.status).toBe(200);
    expect(r.body.output).toContain("survives");
    const after = await containersOf(t, id);
    expect(after.filter((c) => c.state === "running")).toHaveLength(1);
    expect(after.map((c) => c.id)).not.toContain(before!.id);
  });

  test("reconcile ends a ready session whose container died; status goes back to idle and the next call recreates it", async () => {
    t = await createTestBay();
    const id = await newSandbox(t);
    expect((await py(t, id, "open('/workspace/d.txt','w').write('kept')")).status).toBe(200);
    const [before] = await containersOf(t, id);
    await docker.getContainer(before!.id).kill();

    const rep = await t.bay.reconciler.runOnce();
    expect(rep.deadSessions).toBe(1);
    expect(rep.errors).toBe(0);
    expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("idle");
    expect(await containersOf(t, id)).toHaveLength(0);
    // A second pass (or another replica's) finds nothing left to do.
    const again = await t.bay.reconciler.runOnce();
    expect(again.deadSessions + again.orphanContainers + again.strandedSessions).toBe(0);

    const r = await py(t, id, "print(open('/workspace/d.txt').read())");
    expect(r.body.output).toContain("kept");
  });

  test("reconcile removes our orphans (containers without an active session, volumes without a workspace) and nothing else", async () => {
    t = await createTestBay();
    const instanceId = t.bay.instanceId;
    const id = await newSandbox(t);
    expect((await py(t, id, "1")).status).toBe(200);
    const driver = t.bay.driver;
    const labels = { owner: "alice", sandbox_id: id, workspace_id: "ws_gone", instance_id: instanceId };
    // A volume of ours with no workspace row, and one of another installation.
    await driver.createVolume(`${instanceId}-orphan`, labels);
    const foreign = uniqueInstanceId();
    await driver.createVolume(`${foreign}-other`, { ...labels, instance_id: foreign });
    cleanups.push(() => removeLabelled(docker, { "bay.instance_id": foreign }));
    // A container of ours whose session ended long ago (and a foreign one for the same sandbox id).
    const [live] = await containersOf(t, id);
    const orphan = await docker.createContainer({
      Image: SHIP_IMAGE,
      Labels: { "bay.managed-by": "bay", "bay.instance_id": instanceId, "bay.sandbox_id": id, "bay.session_id": "sess_ended" },
    });
    const foreignC = await docker.createContainer({
      Image: SHIP_IMAGE,
      Labels: { "bay.managed-by": "bay", "bay.instance_id": foreign, "bay.sandbox_id": id, "bay.session_id": "sess_other" },
    });

    const rep = await t.bay.reconciler.runOnce();
    expect(rep.orphanContainers).toBe(1);
    expect(rep.orphanVolumes).toBe(1);
    const ours = (await driver.listContainers({ sandbox_id: id, instance_id: instanceId })).map((c) => c.id);
    expect(ours).toEqual([live!.id]);
    expect(ours).not.toContain(orphan.id);
    expect((await docker.getContainer(foreignC.id).inspect()).Id).toBe(foreignC.id);
    expect((await driver.listVolumes({ instance_id: foreign })).map((v) => v.name)).toEqual([`${foreign}-other`]);
    expect((await py(t, id, "2")).status).toBe(200);
  });
});

describe("Bay killed mid-start", () => {
  test("SIGKILL while the container is being created: after restart and reconcile there is no orphan, and exec works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bay-crash-"));
    const dbPath = join(dir, "bay.db");
    const instanceId = uniqueInstanceId();
    const procs: BayProcess[] = [];
    cleanups.push(async () => {
      for (const p of procs) await p.kill("SIGKILL");
      await removeLabelled(docker, { "bay.instance_id": instanceId });
      rmSync(dir, { recursive: true, force: true });
    });
    const config = { lifecycle: { reaper_interval: 0.5 } };
    const first = await startBayProcess({ dbPath, instanceId, dir, config });
    procs.push(first);
    const id = (await api(first.url, "POST", "/v1/sandboxes", {})).body.id as string;
    const call = api(first.url, "POST", `/v1/sandboxes/${id}/python/exec`, { code: "print(1)" }).catch(() => null);
    const [orphan] = await until(
      "a container for the sandbox",
      () => labelled(instanceId, id),
      (l) => l.length > 0,
      30_000,
      10,
    );
    await first.kill("SIGKILL");
    await call;

    const db = createClient({ url: `file:${dbPath}` });
    cleanups.push(async () => db.close());
    const sessionOf = async () =>
      (await db.execute({ sql: "SELECT status, error FROM sessions WHERE sandbox_id = ?", args: [id] })).rows.map((r) => ({ ...r }));
    // The kill landed mid-start: the session is still `starting`, leased to a dead process.
    expect((await sessionOf()).map((s) => s.status)).toEqual(["starting"]);
    expect((await labelled(instanceId, id)).map((c) => c.Id)).toEqual([orphan!.Id]);

    const second = await startBayProcess({ dbPath, instanceId, dir, config });
    procs.push(second);
    // Once the dead starter's lease lapses, the reaper's reconcile ends the session and removes its container.
    await until(
      "orphan removed",
      () => labelled(instanceId, id),
      (l) => l.length === 0,
      30_000,
      200,
    );
    const ended = await sessionOf();
    expect(ended).toHaveLength(1);
    expect(ended[0]!.status).toBe("failed");
    expect(String(ended[0]!.error)).toContain("lease");

    const r = await api(second.url, "POST", `/v1/sandboxes/${id}/python/exec`, {
      code: "open('/workspace/x','w').write('ok'); print('ok')",
    });
    expect(r.status).toBe(200);
    expect(r.body.output).toContain("ok");
    const now = await labelled(instanceId, id);
    expect(now).toHaveLength(1);
    expect(now[0]!.Id).not.toBe(orphan!.Id);
    expect(second.logs.filter((l) => l.level === "error")).toEqual([]);
  });
});
