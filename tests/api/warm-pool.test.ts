/**
 * The warm pool, fast: the same rules as tests/e2e/warm-pool*.test.ts on the
 * in-memory driver (fake Ships) with a real libSQL file and a test clock, so
 * refill, rotation by age, a dead member, a crashed starter and two replicas
 * run in milliseconds. What only Docker shows (the real kernel's warm-up,
 * volumes, labels) stays in the e2e tests.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { poolFingerprint } from "../../src/bay/domain/pool-fingerprint.ts";
import { databaseUnavailable } from "../../src/bay/store/database-errors.ts";
import type { PoolMember } from "../../src/bay/store/pool-store.ts";
import { pollUntil } from "../support/harness.ts";
import {
  containersOf,
  createMemoryBay,
  memoryEngine,
  type MemoryBay,
  py,
  pythonProfile,
  sessionOf,
  TestClock,
} from "./support/memory-bay.ts";

let bays: MemoryBay[] = [];
afterEach(async () => {
  for (const b of bays) await b.close();
  for (const b of bays) b.engine.shutdown();
  bays = [];
});

async function pooled(size: number, opts: Parameters<typeof createMemoryBay>[0] = {}, maxAge = 3600): Promise<MemoryBay> {
  const b = await createMemoryBay({
    ...opts,
    config: {
      profiles: pythonProfile({ warm_pool: { size, max_age_seconds: maxAge } }),
      lifecycle: { warm_pool_concurrency: 2 },
      ...(opts.config ?? {}),
    },
  });
  bays.push(b);
  return b;
}

const members = (t: MemoryBay): Promise<PoolMember[]> => t.bay.deps.stores.pool.members();

/** A pass that began after this call (maintain() joins one in flight, which a claim's kick may have begun earlier). */
async function passAfterNow(t: MemoryBay) {
  await t.bay.pool.settle();
  await new Promise((r) => setImmediate(r));
  await t.bay.pool.settle();
  return t.bay.pool.maintain();
}

/** What `t` makes for python-default now (pool-fingerprint.ts), as a replica of its configuration would record it. */
async function sameConfiguration(t: MemoryBay): Promise<string> {
  const profile = t.bay.deps.profiles.require("python-default");
  const recipe = t.bay.driver.containerRecipe(t.bay.sessions.containerShape(profile));
  return poolFingerprint(profile, recipe, (await t.bay.driver.imageId(profile.image))!);
}
const untilWarm = (t: MemoryBay, n: number) =>
  pollUntil(
    async () => {
      await t.bay.pool.maintain();
      return (await members(t)).filter((m) => m.state === "warm");
    },
    (w) => w.length >= n,
    10_000,
    `${n} warm members`,
  );

describe("warm pool (in memory)", () => {
  test("claims hand out warm members once each, answered ready; the pool refills to its size and no further", async () => {
    const t = await pooled(3);
    const warm = await untilWarm(t, 3);
    const got = await Promise.all(["a", "b", "c", "d"].map((o) => t.json("POST", "/v1/sandboxes", { owner: o, body: {} })));
    expect(got.map((g) => g.status)).toEqual([201, 201, 201, 201]);
    const hits = got.filter((g) => g.body.status === "ready").map((g) => g.body.id);
    // Each warm member went to one owner; the fourth create found the pool empty (lazy, as without a
    // pool) unless a refill finished first.
    expect(new Set(hits).size).toBe(hits.length);
    for (const m of warm) expect(hits.filter((id) => id === m.id)).toHaveLength(1);
    expect(got.filter((g) => g.body.status === "idle").length).toBe(4 - hits.length);
    for (const [i, g] of got.entries()) {
      if (g.body.status !== "ready") continue;
      const r = await py(t, g.body.id, "21 * 2", ["a", "b", "c", "d"][i]);
      expect(r.body).toMatchObject({ success: true });
    }
    const refilled = await untilWarm(t, 3);
    for (const m of refilled) expect(hits).not.toContain(m.id);
    await t.bay.pool.maintain();
    expect(await members(t)).toHaveLength(3);
  });

  test("a claim under an Idempotency-Key applied by the database after Bay gave up on it takes no member: the retry gets it, once", async () => {
    const t = await pooled(1);
    const [m] = await untilWarm(t, 1);
    const db = t.bay.deps.stores.db;
    let late: Parameters<typeof db.batch> | null = null;
    const original = db.batch.bind(db);
    db.batch = (async (...args: Parameters<typeof db.batch>) => {
      if (!late && JSON.stringify(args[0]).includes("claim_token = :token")) {
        late = args; // held back: applied after the 503, as a late libSQL server would
        throw databaseUnavailable("timeout", new Error("no answer in time"));
      }
      return original(...args);
    }) as typeof db.batch;
    const headers = { "idempotency-key": "late-claim" };
    const failed = await t.json("POST", "/v1/sandboxes", { body: {}, headers });
    expect(failed.status).toBe(503);
    expect(late).not.toBeNull();
    await original(...late!); // the claim was released: it takes nothing
    expect((await members(t)).map((x) => x.id)).toEqual([m!.id]);
    const retry = await t.json("POST", "/v1/sandboxes", { body: {}, headers });
    db.batch = original;
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ id: m!.id, status: "ready" });
    await original(...late!); // again, under the retry's claim: nothing of its own
    const rs = await db.execute("SELECT COUNT(*) AS n FROM sandboxes WHERE owner = 'anon:alice' AND deleted_at IS NULL");
    expect(Number(rs.rows[0]!.n)).toBe(1);
  });

  test("a claimed member is never a member again: delete it and it is gone for good, not back in the pool", async () => {
    const t = await pooled(1);
    const [m] = await untilWarm(t, 1);
    const a = await t.json("POST", "/v1/sandboxes", { owner: "alice", body: {} });
    expect(a.body.id).toBe(m!.id);
    expect((await t.call("DELETE", `/v1/sandboxes/${m!.id}`, { owner: "alice" })).status).toBe(204);
    const next = await untilWarm(t, 1);
    expect(next[0]!.id).not.toBe(m!.id);
    const b = await t.json("POST", "/v1/sandboxes", { owner: "bob", body: {} });
    expect(b.body.id).not.toBe(m!.id);
    expect((await sessionOf(t, b.body.id))?.secret).not.toBe((await t.bay.deps.stores.sessions.get(m!.sessionId!))?.secret);
  });

  test("rotation by age on the clock: an aged member is never handed out, is retired with its container, and replaced", async () => {
    const t = await pooled(1, {}, 60);
    const [old] = await untilWarm(t, 1);
    t.clock.advance(61_000);
    // Before any pass retires it, a claim already refuses it (too old): a lazy create.
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(created.body.status).toBe("idle");
    const [fresh] = await untilWarm(t, 1);
    expect(fresh!.id).not.toBe(old!.id);
    expect((await t.bay.deps.stores.sandboxes.get(old!.id))?.deletedAt).not.toBeNull();
    expect(await containersOf(t, old!.id)).toHaveLength(0);
  });

  test("a member made under another configuration (the profile changed across a restart) is never handed out: it is retired and one made the new way replaces it (review s95 M1)", async () => {
    const engine = memoryEngine();
    const clock = new TestClock();
    const before = await createMemoryBay({
      engine,
      clock,
      config: { profiles: pythonProfile({ env: { REV: "v1" }, warm_pool: { size: 1 } }) },
    });
    bays.push(before);
    const [old] = await untilWarm(before, 1);
    await before.bay.pool.stop();
    // The same database and engine, the profile changed: as after a restart with a new configuration.
    const after = await createMemoryBay({
      engine,
      clock,
      dbPath: `${before.dir}/bay.db`,
      instanceId: before.bay.instanceId,
      config: { profiles: pythonProfile({ env: { REV: "v2" }, warm_pool: { size: 1 } }), lifecycle: { warm_pool_concurrency: 2 } },
    });
    bays.push(after);
    // Before its first pass this process knows nothing it could hand out: lazy.
    const early = await after.json("POST", "/v1/sandboxes", { body: {} });
    expect(early.body.status).toBe("idle");
    const [fresh] = await untilWarm(after, 1);
    expect(fresh!.id).not.toBe(old!.id);
    expect((await after.bay.deps.stores.sandboxes.get(old!.id))?.deletedAt).not.toBeNull();
    expect(await containersOf(after, old!.id)).toHaveLength(0);
    const claimed = await after.json("POST", "/v1/sandboxes", { body: {} });
    expect(claimed.body).toMatchObject({ id: fresh!.id, status: "ready" });
    const [container] = await containersOf(after, fresh!.id);
    expect(engine.specOf(container!.id)?.env.REV).toBe("v2");
    // The same configuration on another replica makes the same members: they are kept.
    const same = await pooled(1, {
      engine,
      clock,
      dbPath: `${before.dir}/bay.db`,
      instanceId: before.bay.instanceId,
      config: { profiles: pythonProfile({ env: { REV: "v2" }, warm_pool: { size: 1 } }) },
    });
    const [kept] = await untilWarm(after, 1);
    expect((await same.bay.pool.maintain()).retired).toBe(0);
    expect((await same.json("POST", "/v1/sandboxes", { owner: "bob", body: {} })).body).toMatchObject({ id: kept!.id, status: "ready" });
  });

  test("two live replicas of one configuration with different sizes keep the larger pool: the smaller never retires what the larger made (review s99 M1)", async () => {
    const engine = memoryEngine();
    const clock = new TestClock();
    const small = await pooled(1, { engine, clock });
    const large = await pooled(3, { engine, clock, dbPath: `${small.dir}/bay.db`, instanceId: small.bay.instanceId });
    let retired = 0;
    for (let i = 0; i < 20; i++) {
      retired += (await large.bay.pool.maintain()).retired + (await small.bay.pool.maintain()).retired;
      await Promise.all([small.bay.pool.settle(), large.bay.pool.settle()]);
    }
    expect(retired).toBe(0);
    expect(await members(small)).toHaveLength(3);
    // The larger replica stopped: its size no longer counts, and the smaller one's surplus goes.
    await large.bay.pool.stop();
    expect((await small.bay.pool.maintain()).retired).toBe(2);
  });

  test("two live replicas on two configurations (a rollout half-way) keep a pool each: neither retires the other's members, each claims its own (review s97 M2)", async () => {
    const engine = memoryEngine();
    const clock = new TestClock();
    const one = await pooled(1, { engine, clock, config: { profiles: pythonProfile({ env: { REV: "v1" }, warm_pool: { size: 1 } }) } });
    const two = await pooled(1, {
      engine,
      clock,
      dbPath: `${one.dir}/bay.db`,
      instanceId: one.bay.instanceId,
      config: { profiles: pythonProfile({ env: { REV: "v2" }, warm_pool: { size: 1 } }) },
    });
    let retired = 0;
    for (let i = 0; i < 20; i++) {
      retired += (await one.bay.pool.maintain()).retired + (await two.bay.pool.maintain()).retired;
      await Promise.all([one.bay.pool.settle(), two.bay.pool.settle()]);
      clock.advance(2_000);
    }
    expect(retired).toBe(0);
    const live = await members(one);
    expect(live).toHaveLength(2);
    expect(new Set(live.map((m) => m.fingerprint)).size).toBe(2);
    const env = async (t: MemoryBay, id: string) => engine.specOf((await containersOf(t, id))[0]!.id)?.env.REV;
    const a = await one.json("POST", "/v1/sandboxes", { owner: "alice", body: {} });
    const b = await two.json("POST", "/v1/sandboxes", { owner: "bob", body: {} });
    expect([a.body.status, b.body.status]).toEqual(["ready", "ready"]);
    expect([await env(one, a.body.id as string), await env(two, b.body.id as string)]).toEqual(["v1", "v2"]);
    // One of them gone without a word (killed: its marks only age): once they are a minute old, the other retires what it left.
    // `one` is quiet first: its claim's refill, once warm, kicks a pass that marks its configuration again, which
    // under load could land between the ages below (CI, stop 58).
    await Promise.all([one.bay.pool.maintain(), two.bay.pool.maintain()]);
    await Promise.all([one.bay.pool.quiesce(), two.bay.pool.quiesce()]);
    const v1Made = live.find((m) => m.id === a.body.id)!.fingerprint;
    const v1 = (await members(one)).filter((m) => m.fingerprint === v1Made);
    expect(v1).toHaveLength(1);
    // Its last mark, aged on the database's clock (the marks' own: review s98 L2).
    const age = (ms: number) => two.bay.deps.stores.db.execute({ sql: "UPDATE pool_configs SET seen_at = seen_at - :ms", args: { ms } });
    await age(30_000);
    expect((await passAfterNow(two)).retired).toBe(0);
    await age(31_000);
    await passAfterNow(two);
    for (const m of v1) expect((await two.bay.deps.stores.sandboxes.get(m.id))?.deletedAt).not.toBeNull();
  });

  test("members are in no listing, no quota and not in bay_sandboxes", async () => {
    const t = await pooled(2, { config: { limits: { max_sandboxes_per_owner: 1 } } });
    await untilWarm(t, 2);
    expect((await t.json("GET", "/v1/sandboxes")).body.items).toEqual([]);
    expect((await t.json("GET", "/v1/workspaces")).body.items).toEqual([]);
    const metrics = await (await t.call("GET", "/metrics")).text();
    expect(metrics).not.toMatch(/bay_sandboxes\{[^}]*\} [1-9]/);
    expect(metrics).toMatch(/bay_warm_pool_size\{profile="python-default"\} 2/);
    expect((await t.json("POST", "/v1/sandboxes", { body: {} })).body.status).toBe("ready");
    expect((await t.json("POST", "/v1/sandboxes", { body: {} })).status).toBe(429);
  });

  test("a member whose container died: reconcile ends it, the pass retires and replaces it, no claim gets it", async () => {
    const t = await pooled(1);
    const [m] = await untilWarm(t, 1);
    t.engine.crash(m!.containerId!);
    await t.bay.reaper.runOnce();
    expect((await members(t)).map((x) => x.id)).not.toContain(m!.id);
    const [next] = await untilWarm(t, 1);
    expect(next!.id).not.toBe(m!.id);
    expect((await t.json("POST", "/v1/sandboxes", { body: {} })).body.id).toBe(next!.id);
  });

  test("two replicas on one database and engine fill one pool, and each member goes to exactly one claimer", async () => {
    const engine = memoryEngine();
    const clock = new TestClock();
    const a = await pooled(4, { engine, clock });
    const b = await pooled(4, { engine, clock, dbPath: `${a.dir}/bay.db`, instanceId: a.bay.instanceId });
    await Promise.all([a.bay.pool.maintain(), b.bay.pool.maintain()]);
    const warm = await untilWarm(a, 4);
    await b.bay.pool.maintain();
    expect(await members(a)).toHaveLength(4);
    const got = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).json("POST", "/v1/sandboxes", { owner: `o${i}`, body: {} })),
    );
    const hits = got.filter((g) => g.body.status === "ready").map((g) => g.body.id as string);
    expect(new Set(hits).size).toBe(hits.length);
    for (const m of warm) expect(hits.filter((id) => id === m.id)).toHaveLength(1);
  });

  test("a starter that crashed mid-start: its lease lapses, reconcile ends the start, and the pool is refilled", async () => {
    const engine = memoryEngine();
    const clock = new TestClock();
    const a = await pooled(1, { engine, clock });
    // Rows of a member whose starter died before its container ran (as after kill -9).
    const now = clock.now();
    await a.bay.deps.stores.pool.insertMember(
      {
        sandboxId: "sandbox-crashed-member-000000",
        workspaceId: "ws-crashed-member-0000000000",
        sessionId: "sess-crashed-member-000000000",
        profileId: "python-default",
        // A replica of the same configuration (as this one after a restart) made it.
        fingerprint: await sameConfiguration(a),
        secret: "s".repeat(43),
        sizeLimitMb: 1024,
        leaseOwner: "replica-gone",
        leaseExpiresAt: now + 10_000,
        now,
      },
      1,
      100,
      2,
    );
    expect((await members(a)).map((m) => m.state)).toEqual(["warming"]);
    // The pool is full (a warming member counts): nothing starts until the lease lapses.
    expect((await a.bay.pool.maintain()).started).toBe(0);
    clock.advance(11_000);
    await a.bay.reaper.runOnce();
    const [fresh] = await untilWarm(a, 1);
    expect(fresh!.id).not.toBe("sandbox-crashed-member-000000");
    expect((await a.bay.deps.stores.sandboxes.get("sandbox-crashed-member-000000"))?.deletedAt).not.toBeNull();
  });

  test("a refill refused at Bay's session cap waits for the next beat, not a pass per refusal (review s101)", async () => {
    const t = await pooled(2, { config: { limits: { max_live_sessions: 3 } } });
    await untilWarm(t, 2);
    const pool = t.bay.deps.stores.pool;
    let passes = 0;
    let refused = 0;
    const mark = pool.markConfigs.bind(pool);
    const insert = pool.insertMember.bind(pool);
    pool.markConfigs = (...a: Parameters<typeof mark>) => {
      passes++;
      return mark(...a);
    };
    pool.insertMember = async (...a: Parameters<typeof insert>) => {
      const ok = await insert(...a);
      if (!ok) refused++;
      return ok;
    };
    for (const owner of ["a", "b"]) {
      const got = await t.json("POST", "/v1/sandboxes", { owner, body: {} });
      expect(got.body.status).toBe("ready");
    }
    // Two claimed sessions live: one refill fits under the cap, the next is refused. Each refusal kicked
    // another pass, which launched the same member again: thousands of passes a second, all of them promise
    // continuations on the embedded database, so no timer fired again and this sleep never ended.
    await Bun.sleep(500);
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(refused).toBeLessThanOrEqual(2);
    expect(passes).toBeLessThanOrEqual(8);
    expect((await members(t)).length).toBe(1);
  });

  test("size 0: no member, and a create asks nothing of the pool", async () => {
    const t = await pooled(0);
    expect((await t.bay.pool.maintain()).started).toBe(0);
    expect(await members(t)).toEqual([]);
    expect((await t.json("POST", "/v1/sandboxes", { body: {} })).body.status).toBe("idle");
  });
});
