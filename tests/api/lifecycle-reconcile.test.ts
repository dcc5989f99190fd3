/**
 * Reconcile and restarts, fast: a dead container's session, orphans (and only
 * ours), Bay restarting on the same database, an engine restart that hands a
 * stored endpoint to another session's Ship (its /meta refuses the old secret:
 * 401, so the session is replaced, never trusted), and a Bay that died mid-start.
 * In-memory driver, real libSQL file, time moved by the test clock. The same on
 * Docker: tests/e2e/lifecycle-crash, bay-restart, trust-boundary, lifecycle-installations.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { ContainerSpec } from "../../src/bay/drivers/driver.ts";
import { CREDENTIALS_ENV } from "../../src/protocol/ship/index.ts";
import { uniqueInstanceId } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import {
  containersOf,
  createMemoryBay,
  memoryEngine,
  type MemoryBay,
  newSandbox,
  py,
  sandbox,
  sessionOf,
  sh,
  TestClock,
} from "./support/memory-bay.ts";

let bays: MemoryBay[] = [];
afterEach(async () => {
  for (const b of bays) await b.close();
  for (const b of bays) b.engine.shutdown();
  bays = [];
});
const bayWith = async (opts: Parameters<typeof createMemoryBay>[0] = {}) => {
  const b = await createMemoryBay(opts);
  bays.push(b);
  return b;
};
/** A second Bay on the same database and engine: a restart, or another replica. */
const restarted = (t: MemoryBay, clock = t.clock) =>
  bayWith({ engine: t.engine, clock, dbPath: `${t.dir}/bay.db`, instanceId: t.bay.instanceId });
const sessionStatus = async (t: MemoryBay, sessionId: string) => (await t.bay.deps.stores.sessions.get(sessionId))!.status;

describe("reconcile", () => {
  test("a ready session whose container died is ended: status idle, and the next call starts a new one on the same files", async () => {
    const t = await bayWith();
    const id = await newSandbox(t);
    expect((await py(t, id, "open('/workspace/d.txt','w').write('kept')")).status).toBe(200);
    const [before] = await containersOf(t, id);
    t.engine.crash(before!.id);

    const rep = await t.bay.reconciler.runOnce();
    expect(rep).toMatchObject({ deadSessions: 1, errors: 0 });
    expect((await sandbox(t, id)).status).toBe("idle");
    expect(await containersOf(t, id)).toHaveLength(0);
    const again = await t.bay.reconciler.runOnce();
    expect(again.deadSessions + again.orphanContainers + again.strandedSessions).toBe(0);

    expect((await py(t, id, "print(open('/workspace/d.txt').read())")).body.output).toBe("kept\n");
  });

  test("our orphans go (a container without an active session, a volume without a workspace); another installation's stay", async () => {
    const t = await bayWith();
    const instanceId = t.bay.instanceId;
    const id = await newSandbox(t);
    expect((await py(t, id, "1")).status).toBe(200);
    const [live] = await containersOf(t, id);
    const foreign = uniqueInstanceId();
    const labels = { owner: "alice", sandbox_id: id, workspace_id: "ws_gone", instance_id: instanceId };
    await t.engine.createVolume(`${instanceId}-orphan`, labels);
    await t.engine.createVolume(`${foreign}-other`, { ...labels, instance_id: foreign });
    const spec = (session: string, instance: string): ContainerSpec => ({
      name: `orphan-${session}-${instance}`,
      image: SHIP_IMAGE,
      runtimePort: 8123,
      env: { [CREDENTIALS_ENV]: "stdin" },
      labels: { ...labels, session_id: session, instance_id: instance },
      cpus: 1,
      memoryMb: 256,
      pidsLimit: 64,
      volumeName: `${instance}-orphan-vol`,
    });
    const orphan = await t.engine.createContainer(spec("sess_ended", instanceId));
    const other = await t.engine.createContainer(spec("sess_other", foreign));

    const rep = await t.bay.reconciler.runOnce();
    expect(rep).toMatchObject({ orphanContainers: 1, orphanVolumes: 1, errors: 0 });
    const ours = (await t.engine.listContainers({ sandbox_id: id, instance_id: instanceId })).map((c) => c.id);
    expect(ours).toEqual([live!.id]);
    expect(ours).not.toContain(orphan);
    expect((await t.engine.containerStatus(other)).state).toBe("created");
    expect((await t.engine.listVolumes({ instance_id: foreign })).map((v) => v.name)).toEqual([`${foreign}-other`]);
    // The orphan container's unlabelled volume is no volume of ours: left alone.
    expect(await t.engine.listVolumes({ workspace_id: "ws_gone", instance_id: instanceId })).toEqual([]);
    expect((await py(t, id, "2")).status).toBe(200);
    await t.engine.destroyContainer(other);
  });

  test("a Bay that died mid-start: once its lease lapses, reconcile ends the start and removes its container; the late start is superseded", async () => {
    const engine = memoryEngine();
    const dead = await bayWith({ engine, clock: new TestClock() });
    const id = await newSandbox(dead);
    const hold = engine.holdStarts();
    const stuck = py(dead, id, "1");
    const containerId = await hold.reached;
    expect((await sessionOf(dead, id))!.status).toBe("starting");

    // Another Bay whose clock is past the dead one's lease (the dead one's own clock renews nothing past it).
    const later = new TestClock();
    later.advance(60_000);
    const live = await restarted(dead, later);
    const rep = await live.bay.reconciler.runOnce();
    expect(rep.abandonedStarts).toBe(1);
    expect((await live.engine.containerStatus(containerId)).state).toBe("missing");
    const ended = await live.bay.deps.stores.db.execute({ sql: "SELECT status, error FROM sessions WHERE sandbox_id = ?", args: [id] });
    expect(ended.rows.map((r) => [r.status, String(r.error)])).toEqual([["failed", "start abandoned: lease lapsed"]]);

    hold.release();
    const late = await stuck;
    expect(late.status).toBe(409);
    expect(late.body.error.details).toMatchObject({ reason: "superseded" });
    expect((await py(live, id, "print('ok')")).body.output).toBe("ok\n");
    expect((await containersOf(live, id)).map((c) => c.state)).toEqual(["running"]);
  });
});

describe("restarts", () => {
  test("Bay restarts on the same database: the next call verifies the stored endpoint at /meta and reuses the session, state and all", async () => {
    const t = await bayWith();
    const id = await newSandbox(t);
    expect((await py(t, id, "x = 'survives'")).status).toBe(200);
    const before = (await sessionOf(t, id))!;

    const t2 = await restarted(t);
    expect((await py(t2, id, "x")).body.output).toBe("'survives'\n");
    expect((await sessionOf(t2, id))!.id).toBe(before.id);
    expect(await containersOf(t2, id)).toHaveLength(1);
  });

  test("engine restart: a stored endpoint now reaches another session's Ship, which refuses the old secret (401); each owner lands in their own sandbox", async () => {
    const t = await bayWith();
    const a = await newSandbox(t, {}, "alice");
    expect((await py(t, a, "owner = 'alice'", "alice")).body.success).toBe(true);
    const aliceBefore = (await sessionOf(t, a))!;

    t.engine.restartEngine();
    // Bob's new Ship gets the port alice's stored endpoint names.
    const b = await newSandbox(t, {}, "bob");
    expect((await py(t, b, "owner = 'bob'", "bob")).body.success).toBe(true);
    const bob = (await sessionOf(t, b))!;
    expect(bob.endpoint).toBe(aliceBefore.endpoint);
    const refused = await fetch(`${bob.endpoint}/meta`, { headers: { authorization: `Bearer ${aliceBefore.secret}` } });
    expect(refused.status).toBe(401);

    // This Bay had verified alice's session: the call meets a 401, ends it and runs on a fresh one.
    const r = await sh(t, a, "echo alice-was-here > mark.txt; cat mark.txt", "alice");
    expect(r.body.output).toBe("alice-was-here\n");
    expect((await py(t, a, "owner", "alice")).body.error).toContain("NameError");
    expect(await sessionStatus(t, aliceBefore.id)).toBe("failed");
    expect((await sessionOf(t, a))!.id).not.toBe(aliceBefore.id);

    // Bob's kernel never ran alice's code, and alice's file is in alice's workspace only.
    expect((await py(t, b, "owner", "bob")).body.output).toBe("'bob'\n");
    expect((await sh(t, b, "cat mark.txt", "bob")).body.exit_code).toBe(1);
    expect((await sessionOf(t, b))!.id).toBe(bob.id);
  });

  test("a new Bay process checks a stored endpoint before trusting it: the wrong session at /meta starts a fresh one", async () => {
    const t = await bayWith();
    const a = await newSandbox(t, {}, "alice");
    const b = await newSandbox(t, {}, "bob");
    expect((await py(t, a, "owner = 'alice'", "alice")).body.success).toBe(true);
    expect((await py(t, b, "owner = 'bob'", "bob")).body.success).toBe(true);
    const alice = (await sessionOf(t, a))!;
    const bob = (await sessionOf(t, b))!;
    await t.bay.deps.stores.db.execute({ sql: "UPDATE sessions SET endpoint = ? WHERE id = ?", args: [bob.endpoint, alice.id] });

    const t2 = await restarted(t);
    const r = await py(t2, a, "owner", "alice");
    expect(r.status).toBe(200);
    expect(r.body.error).toContain("NameError: name 'owner' is not defined");
    expect(await sessionStatus(t2, alice.id)).toBe("failed");
    expect((await py(t2, b, "owner", "bob")).body.output).toBe("'bob'\n");
    expect((await sessionOf(t2, b))!.id).toBe(bob.id);
  });

  test("engine restart with nothing on the old port: the next call finds the endpoint dead and starts a new session; reconcile tidies the rest", async () => {
    const t = await bayWith();
    const ids = [await newSandbox(t), await newSandbox(t)];
    for (const id of ids) expect((await py(t, id, "open('f.txt','w').write('kept')")).status).toBe(200);
    t.engine.restartEngine();
    // Bay learns of it as its call channels' connections end, on the next turn of its event loop.
    await Bun.sleep(20);

    expect((await py(t, ids[0]!, "print(open('f.txt').read())")).body.output).toBe("kept\n");
    const rep = await t.bay.reconciler.runOnce();
    expect(rep.deadSessions).toBe(1);
    expect((await sandbox(t, ids[1]!)).status).toBe("idle");
    expect((await containersOf(t, ids[1]!)).length).toBe(0);
    expect((await containersOf(t, ids[0]!)).map((c) => c.state)).toEqual(["running"]);
  });
});
