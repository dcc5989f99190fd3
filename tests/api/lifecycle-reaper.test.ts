/**
 * The reaper, fast: idle reclaim, a call in flight outlasting the idle timeout,
 * keepalive, TTL expiry (seen before and after the reaper's beat), the
 * expired-workspace policy, extend_ttl, and two replicas beating at once, on the
 * in-memory driver with a real libSQL file. Time moves by the test clock, never
 * by waiting. The same rules on Docker: tests/e2e/lifecycle-reaper.test.ts and
 * lifecycle-replicas.test.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { COVER_LEASE_MS } from "../../src/bay/domain/call-cover.ts";
import { pollUntil } from "../support/harness.ts";
import {
  containersOf,
  createMemoryBay,
  memoryEngine,
  type MemoryBay,
  newSandbox,
  py,
  pythonProfile,
  sandbox,
  sessionOf,
  sleepGate,
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
const idleMs = (t: MemoryBay) => t.config.profiles[0]!.idle_timeout * 1000;
const idleDeadline = async (t: MemoryBay, id: string) => Date.parse((await sandbox(t, id)).idle_expires_at);

describe("idle reclaim", () => {
  test("a session idle past its deadline is stopped; before it, it is not; the next call starts a new one with the files", async () => {
    const t = await bayWith();
    const id = await newSandbox(t);
    expect((await py(t, id, "open('/workspace/keep.txt','w').write('still here')")).status).toBe(200);
    const [first] = await containersOf(t, id);
    const deadline = await idleDeadline(t, id);

    t.clock.advance(deadline - t.clock.now() - 1_000);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(0);
    expect((await sandbox(t, id)).status).toBe("ready");

    t.clock.advance(2_000);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(1);
    expect(await sandbox(t, id)).toMatchObject({ status: "idle", idle_expires_at: null });
    expect(await containersOf(t, id)).toHaveLength(0);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(0);

    const r = await py(t, id, "print(open('/workspace/keep.txt').read())");
    expect(r.body.output).toBe("still here\n");
    const [second, ...more] = await containersOf(t, id);
    expect(more).toHaveLength(0);
    expect(second!.id).not.toBe(first!.id);
  });

  test("a call that outlasts idle_timeout keeps its session: the reaper waits for it, then reclaims", async () => {
    const gate = sleepGate();
    // A short idle timeout: the call's own timeout (300 s) reaches past it.
    const t = await bayWith({ engine: memoryEngine({ sleep: gate.sleep }), config: { profiles: pythonProfile({ idle_timeout: 2 }) } });
    const id = await newSandbox(t);
    expect((await py(t, id, "x = 1")).status).toBe(200);
    const session = (await sessionOf(t, id))!.id;

    const long = py(t, id, "import time; time.sleep(600); x + 1", "alice", 300);
    await pollUntil(
      () => gate.sleeping(),
      (n) => n === 1,
      5_000,
      "the cell sleeping",
    );
    // Past the idle deadline, within the call's timeout and its cover's lease (renewed on real time while the call runs).
    t.clock.advance(idleMs(t) + 10_000);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(0);
    expect((await sessionOf(t, id))!.id).toBe(session);

    gate.release();
    expect((await long).body.output).toBe("2\n");
    // Once the call is over, the idle timeout applies again from its end: its 300 s cover is gone.
    const covers = async () =>
      Number(
        (await t.bay.deps.stores.db.execute({ sql: "SELECT COUNT(*) AS n FROM call_covers WHERE sandbox_id = ?", args: [id] })).rows[0]!.n,
      );
    await pollUntil(covers, (n) => n === 0, 5_000, "the call's cover gone after the call");
    expect(await idleDeadline(t, id)).toBeLessThan(t.clock.now() + 60_000);
    t.clock.advance(idleMs(t) + 60_000);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(1);
    expect((await sandbox(t, id)).status).toBe("idle");
  });

  test("the cover of a call whose Bay died (no longer renewed) lapses within its lease, and the session is reclaimed", async () => {
    const t = await bayWith({ config: { profiles: pythonProfile({ idle_timeout: 2 }) } });
    const id = await newSandbox(t);
    expect((await py(t, id, "x = 1")).status).toBe(200);
    // What a Bay killed mid-call leaves: a cover row nobody renews or deletes.
    await t.bay.deps.stores.sandboxes.coverCall("dead-call", id, t.clock.now() + COVER_LEASE_MS);
    t.clock.advance(idleMs(t) + 5_000);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(0);
    t.clock.advance(COVER_LEASE_MS);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(1);
    const left = await t.bay.deps.stores.db.execute("SELECT COUNT(*) AS n FROM call_covers");
    expect(Number(left.rows[0]!.n)).toBe(0); // purged
  });

  test("a stream opened late in the idle window keeps its session: its idle deadline moves at once", async () => {
    // Its call's cover is short (a watch's), and its first renewal comes only min(idle / 2, 60 s) after it opens.
    const t = await bayWith();
    const id = await newSandbox(t);
    expect((await py(t, id, "x = 1")).status).toBe(200);
    const session = (await sessionOf(t, id))!.id;
    // The settle after the call: idle_timeout + its slack from now (armed at ready without the slack).
    await pollUntil(
      () => idleDeadline(t, id),
      (d) => d > t.clock.now() + idleMs(t) + 1_000,
      5_000,
      "the deadline settled after the call",
    );
    t.clock.advance((await idleDeadline(t, id)) - t.clock.now() - 10_000); // 10 s before the deadline
    const watch = await t.call("GET", `/v1/sandboxes/${id}/filesystem/watch?path=.`, { owner: "alice" });
    expect(watch.status).toBe(200);
    await pollUntil(
      () => idleDeadline(t, id),
      (d) => d >= t.clock.now() + idleMs(t) - 1_000,
      5_000,
      "the deadline pushed when the stream opened",
    );
    t.clock.advance(30_000); // past the old deadline and the watch call's own cover, before its first renewal
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(0);
    expect((await sessionOf(t, id))?.id).toBe(session);
    await watch.body?.cancel();
  });

  test("keepalive moves only the idle deadline and never starts compute", async () => {
    const t = await bayWith();
    const id = await newSandbox(t);
    const cold = await t.json("POST", `/v1/sandboxes/${id}/keepalive`);
    expect(cold.body).toMatchObject({ status: "idle", idle_expires_at: null });
    expect(await containersOf(t, id)).toHaveLength(0);

    expect((await py(t, id, "1")).status).toBe(200);
    const old = await idleDeadline(t, id);
    t.clock.advance(idleMs(t) - 10_000);
    const kept = await t.json("POST", `/v1/sandboxes/${id}/keepalive`);
    expect(kept.body.status).toBe("ready");
    const renewed = Date.parse(kept.body.idle_expires_at);
    expect(renewed).toBeGreaterThan(old + idleMs(t) / 2);

    t.clock.advance(old - t.clock.now() + 1_000); // past the old deadline, before the new one
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(0);
    t.clock.advance(renewed - t.clock.now() + 1_000);
    expect((await t.bay.reaper.runOnce()).idleReclaimed).toBe(1);
  });

  test("two replicas' reapers beating at the same instant reclaim an idle session once", async () => {
    const engine = memoryEngine();
    const clock = new TestClock();
    const a = await bayWith({ engine, clock });
    const b = await bayWith({ engine, clock, dbPath: `${a.dir}/bay.db`, instanceId: a.bay.instanceId });
    const id = await newSandbox(a);
    expect((await py(a, id, "1")).status).toBe(200);
    clock.advance(idleMs(a) + 60_000);
    const [ra, rb] = await Promise.all([a.bay.reaper.runOnce(), b.bay.reaper.runOnce()]);
    expect(ra.idleReclaimed + rb.idleReclaimed).toBe(1);
    expect(await containersOf(a, id)).toHaveLength(0);
    const rs = await a.bay.deps.stores.db.execute({ sql: "SELECT status FROM sessions WHERE sandbox_id = ?", args: [id] });
    expect(rs.rows.map((r) => r.status)).toEqual(["stopped"]);
  });
});

describe("TTL expiry", () => {
  test("past its TTL a sandbox is expired at once (calls 409) and the beat removes its compute; GET and DELETE still work; the workspace is kept", async () => {
    const t = await bayWith();
    const created = await t.json("POST", "/v1/sandboxes", { body: { ttl: 60 } });
    const id = created.body.id as string;
    const wsId = created.body.workspace_id as string;
    expect((await py(t, id, "open('a.txt','w').write('x')")).status).toBe(200);

    t.clock.advance(61_000);
    // Expired before any beat: the status is computed from the clock.
    expect((await sandbox(t, id)).status).toBe("expired");
    const refused = await py(t, id, "1");
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("sandbox_expired");
    expect(await containersOf(t, id)).toHaveLength(1);

    const beat = await t.bay.reaper.runOnce();
    expect(beat.expired).toBe(1);
    expect(await containersOf(t, id)).toHaveLength(0);
    expect((await t.bay.reaper.runOnce()).expired).toBe(0);
    expect(await sandbox(t, id)).toMatchObject({ status: "expired", idle_expires_at: null });
    const ext = await t.json("POST", `/v1/sandboxes/${id}/extend_ttl`, { body: { extend_by: 60 } });
    expect(ext.status).toBe(409);
    expect(ext.body.error.code).toBe("sandbox_expired");
    expect((await t.json("POST", `/v1/sandboxes/${id}/keepalive`)).status).toBe(409);
    expect(await containersOf(t, id)).toHaveLength(0);

    // lifecycle.expired_workspace defaults to keep.
    expect(await t.engine.listVolumes({ workspace_id: wsId })).toHaveLength(1);
    expect((await t.json("GET", `/v1/workspaces/${wsId}`)).status).toBe(200);
    expect((await t.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect((await t.call("GET", `/v1/sandboxes/${id}`)).status).toBe(404);
    expect(await t.engine.listVolumes({ workspace_id: wsId })).toHaveLength(0);
  });

  test("with expired_workspace: delete, the managed workspace goes with the compute", async () => {
    const t = await bayWith({ config: { lifecycle: { expired_workspace: "delete" } } });
    const created = await t.json("POST", "/v1/sandboxes", { body: { ttl: 60 } });
    const id = created.body.id as string;
    const wsId = created.body.workspace_id as string;
    expect((await py(t, id, "open('a.txt','w').write('x')")).status).toBe(200);
    t.clock.advance(61_000);
    const beat = await t.bay.reaper.runOnce();
    expect(beat).toMatchObject({ expired: 1, workspacesDeleted: 1 });
    expect(await t.engine.listVolumes({ workspace_id: wsId })).toHaveLength(0);
    expect((await sandbox(t, id)).status).toBe("expired");
    expect((await t.call("GET", `/v1/workspaces/${wsId}`)).status).toBe(404);
    expect((await t.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
  });

  test("extend_ttl moves expires_at forward and keeps the sandbox alive past its first TTL; without a TTL → 409 conflict", async () => {
    const t = await bayWith();
    const created = await t.json("POST", "/v1/sandboxes", { body: { ttl: 60 } });
    const id = created.body.id as string;
    const ext = await t.json("POST", `/v1/sandboxes/${id}/extend_ttl`, { body: { extend_by: 120 } });
    expect(ext.status).toBe(200);
    expect(Date.parse(ext.body.expires_at) - Date.parse(created.body.expires_at)).toBe(120_000);
    expect(await containersOf(t, id)).toHaveLength(0);
    t.clock.advance(90_000);
    expect((await t.bay.reaper.runOnce()).expired).toBe(0);
    expect((await py(t, id, "1")).status).toBe(200);
    t.clock.advance(100_000);
    expect((await t.bay.reaper.runOnce()).expired).toBe(1);

    const forever = await newSandbox(t);
    const ext2 = await t.json("POST", `/v1/sandboxes/${forever}/extend_ttl`, { body: { extend_by: 120 } });
    expect(ext2.status).toBe(409);
    expect(ext2.body.error.code).toBe("conflict");
    expect((await sandbox(t, forever)).expires_at ?? null).toBeNull();
  });
});
