/**
 * PoolManager's refill logic on a real libSQL file, with member starts held
 * open by the test (the real starts run in tests/e2e/warm-pool*.test.ts): at
 * most `concurrency` starts at once, a pool refilled up to its size and no
 * further, a profile whose starts fail backs off (and its failed members are
 * retired at once), and aged or surplus members are retired, never a claimed
 * one.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "../../src/bay/config.ts";
import { PoolManager } from "../../src/bay/domain/pool-manager.ts";
import { ProfileRegistry } from "../../src/bay/domain/profiles.ts";
import type { SessionManager } from "../../src/bay/domain/session-manager.ts";
import type { Driver } from "../../src/bay/drivers/driver.ts";
import { silentLogger } from "../../src/bay/logger.ts";
import { openDatabase, type Database } from "../../src/bay/store/database.ts";
import { createStores, type Stores } from "../../src/bay/store/index.ts";

let dir: string;
let db: Database;
let stores: Stores;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-pool-manager-"));
  db = await openDatabase({ url: `file:${join(dir, "bay.db")}` });
  stores = createStores(db);
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Member starts the test finishes by hand: each marks the session ready (as a real start does) or fails. */
function heldStarts() {
  const pending: Array<{ sandboxId: string; sessionId: string; finish(ok: boolean): Promise<void> }> = [];
  let started = 0;
  const sessions = {
    startMember(sandboxId: string, sessionId: string) {
      started++;
      return new Promise<void>((resolve, reject) => {
        pending.push({
          sandboxId,
          sessionId,
          async finish(ok) {
            if (ok) {
              await stores.db.execute(stores.sessions.markReadyStatement(sessionId, "http://127.0.0.1:1", Date.now()));
              resolve();
            } else {
              // A failed start ends its own session (SessionManager.cleanupFailedStart does).
              await stores.sessions.end(sessionId, "failed", Date.now(), "test");
              await stores.sandboxes.releaseCurrentSession(sandboxId, sessionId);
              reject(new Error("start failed"));
            }
          },
        });
      });
    },
    async removeSandboxContainers() {},
    containerShape: (profile: { image: string }) => ({ image: profile.image }),
  };
  return {
    sessions: sessions as unknown as SessionManager,
    pending,
    started: () => started,
    /** Finishes the oldest held start (the pass it kicks runs after; `maintain()` joins it). */
    async finishNext(ok = true) {
      const p = pending.shift();
      if (!p) throw new Error("no start is held");
      await p.finish(ok);
      await Bun.sleep(5);
    },
  };
}

const removedVolumes: string[] = [];
/** What each image name points at now (a rebuild gives it another id). */
const imageIds = new Map<string, string>();
const driver = {
  async removeVolume(name: string) {
    removedVolumes.push(name);
  },
  async destroyContainer() {},
  containerRecipe: (shape: unknown) => shape,
  async imageId(image: string) {
    const id = imageIds.get(image) ?? `id-of-${image}`;
    if (id === "engine-failing") throw new Error("engine timeout");
    return id;
  },
} as unknown as Driver;

function manager(size: number, concurrency: number, now: () => number = Date.now, maxAge = 3600, maxLiveSessions = 100) {
  const held = heldStarts();
  const profiles = new ProfileRegistry(
    configSchema.parse({ profiles: [{ id: "p", image: "i", warm_pool: { size, max_age_seconds: maxAge } }] }).profiles,
  );
  const pool = new PoolManager(
    { stores, sessions: held.sessions, driver, profiles, logger: silentLogger, now },
    {
      replicaId: "replica-test",
      concurrency,
      maxLiveSessions,
      tickMs: 50,
      workspaceSizeLimitMb: 1024,
      maxSandboxesPerOwner: 50,
      maxWorkspacesPerOwner: 100,
    },
  );
  return { pool, held, profile: profiles.require("p") };
}

const states = async () => (await stores.pool.members()).map((m) => m.state).sort();

/** A pass starts the profile's one member, and that start fails (the profile then backs off 1 s). */
async function firstStartFails({ pool, held }: ReturnType<typeof manager>) {
  await pool.maintain();
  await Bun.sleep(5);
  await held.finishNext(false);
  await pool.settle();
}

describe("refill", () => {
  test("at most `concurrency` member starts at once, up to the size and no further", async () => {
    const { pool, held } = manager(5, 2);
    const report = await pool.maintain();
    expect(report.started).toBe(2);
    await Bun.sleep(5);
    expect(held.started()).toBe(2);
    expect(await states()).toEqual(["warming", "warming"]);
    // Each finished start frees one slot, and the pass it kicks fills it.
    for (let i = 0; i < 5; i++) {
      await held.finishNext();
      await pool.maintain();
      expect(held.pending.length).toBeLessThanOrEqual(2);
    }
    expect(held.started()).toBe(5);
    expect(await states()).toEqual(["warm", "warm", "warm", "warm", "warm"]);
    expect(held.pending).toHaveLength(0);
    // Full: a pass starts nothing.
    expect((await pool.maintain()).started).toBe(0);
    expect(pool.size("p")).toBe(5);
  });

  test("a claim is replaced by one new start", async () => {
    const { pool, held, profile } = manager(2, 2);
    await pool.maintain();
    await Bun.sleep(5);
    await held.finishNext();
    await held.finishNext();
    await pool.settle();
    expect(await states()).toEqual(["warm", "warm"]);
    const id = await pool.claim("anon:alice", profile, 0);
    expect(id).not.toBeNull();
    await pool.maintain();
    await Bun.sleep(5);
    expect(held.started()).toBe(3);
    expect(await states()).toEqual(["warm", "warming"]);
  });

  test("a failing profile backs off: its failed member is retired at once, no new start until the back-off passes", async () => {
    let now = Date.now();
    const m = manager(1, 1, () => now);
    const { pool, held } = m;
    await firstStartFails(m);
    // Retired with its workspace (and its volume removed), and nothing started in its place.
    expect(await stores.pool.members()).toEqual([]);
    expect(removedVolumes.length).toBeGreaterThan(0);
    expect((await pool.maintain()).started).toBe(0);
    expect(held.started()).toBe(1);
    now += 1001;
    expect((await pool.maintain()).started).toBe(1);
    await Bun.sleep(5);
    // A second failure doubles the wait.
    await held.finishNext(false);
    await pool.settle();
    now += 1001;
    expect((await pool.maintain()).started).toBe(0);
    now += 1000;
    expect((await pool.maintain()).started).toBe(1);
  });
});

describe("refill at the cap (reviews s101, s102)", () => {
  test("a member refused as full holds the profile's starts until the next beat, and no pass is kicked for it", async () => {
    // Bay's session cap of 2: one member fits (members leave owners at least one session).
    const { pool, held } = manager(3, 2, Date.now, 3600, 2);
    let passes = 0;
    const mark = stores.pool.markConfigs.bind(stores.pool);
    stores.pool.markConfigs = (...a: Parameters<typeof mark>) => {
      passes++;
      return mark(...a);
    };
    expect((await pool.maintain()).started).toBe(2);
    await Bun.sleep(20);
    // One inserted (held open), one refused: no pass after the refusal, and none starts until the beat.
    expect(held.started()).toBe(1);
    expect(passes).toBe(1);
    expect((await pool.maintain()).started).toBe(0);
    // Each beat clears the hold: its pass tries once more (refused again), and nothing else runs.
    let refused = 0;
    const insert = stores.pool.insertMember.bind(stores.pool);
    stores.pool.insertMember = async (...a: Parameters<typeof insert>) => {
      const ok = await insert(...a);
      if (!ok) refused++;
      return ok;
    };
    const passesBefore = passes;
    const began = performance.now();
    pool.start();
    while (refused < 2 && performance.now() - began < 10_000) await Bun.sleep(10);
    await Bun.sleep(100);
    // At most one try per beat (50 ms here), however late a loaded machine fires them.
    const beats = (performance.now() - began) / 50 + 1;
    expect(refused).toBeGreaterThanOrEqual(2);
    expect(refused).toBeLessThanOrEqual(beats);
    expect(passes - passesBefore).toBeLessThanOrEqual(beats + 1);
    expect(held.started()).toBe(1);
    await held.finishNext();
    await pool.stop();
    expect(await states()).toEqual(["warm"]);
  });

  test("a claim that finds no member runs no pass", async () => {
    const { pool, profile } = manager(1, 1);
    imageIds.set("i", "engine-failing"); // nothing is claimable, nothing starts
    let passes = 0;
    const mark = stores.pool.markConfigs.bind(stores.pool);
    stores.pool.markConfigs = (...a: Parameters<typeof mark>) => {
      passes++;
      return mark(...a);
    };
    await pool.maintain();
    imageIds.delete("i");
    await pool.maintain();
    const before = passes;
    for (let i = 0; i < 20; i++) expect(await pool.claim(`anon:o${i}`, profile, 0)).toBeNull();
    await Bun.sleep(20);
    expect(passes).toBe(before);
  });

  test("a clock stepped back does not stop refills for the length of the step", async () => {
    let now = Date.now();
    const m = manager(1, 1, () => now);
    const { pool } = m;
    await firstStartFails(m);
    expect((await pool.maintain()).started).toBe(0); // backing off 1 s
    now -= 3_600_000; // the wall clock steps back an hour
    expect((await pool.maintain()).started).toBe(1);
  });
});

describe("retire", () => {
  test("aged members are retired and replaced; a claimed sandbox is never touched", async () => {
    let now = Date.now();
    const { pool, held, profile } = manager(2, 2, () => now, 60);
    await pool.maintain();
    await Bun.sleep(5);
    await held.finishNext();
    await held.finishNext();
    await pool.settle();
    const claimed = (await pool.claim("anon:alice", profile, 0))!;
    await pool.maintain();
    await Bun.sleep(5);
    const [aged] = (await stores.pool.members()).filter((m) => m.state === "warm");
    now += 61_000;
    const report = await pool.maintain();
    expect(report.retired).toBe(1);
    expect((await stores.sandboxes.get(aged!.id))?.deletedAt).not.toBeNull();
    const mine = await stores.sandboxes.findLive("anon:alice", claimed, now);
    expect(mine?.deletedAt).toBeNull();
    expect(mine?.status).toBe("ready");
  });

  test("an image rebuilt under the profile's name: from the next pass its warm members are never claimed, are retired and replaced (review s95 M1)", async () => {
    const { pool, held, profile } = manager(1, 1);
    await pool.maintain();
    await Bun.sleep(5);
    await held.finishNext();
    await pool.settle();
    const [old] = await stores.pool.members();
    expect(old!.state).toBe("warm");
    imageIds.set("i", "id-of-the-rebuilt-image");
    try {
      const report = await pool.maintain();
      expect(report.retired).toBe(1);
      expect(report.started).toBe(1);
      expect((await stores.sandboxes.get(old!.id))?.deletedAt).not.toBeNull();
      expect(await pool.claim("anon:alice", profile, 0)).toBeNull();
      await held.finishNext();
      await pool.settle();
      const [fresh] = await stores.pool.members();
      expect(fresh!.fingerprint).not.toBe(old!.fingerprint);
      expect(await pool.claim("anon:alice", profile, 0)).toBe(fresh!.id);
    } finally {
      imageIds.clear();
    }
  });

  test("while the image cannot be read (the engine failing), nothing of the profile is claimed, started or retired; then all goes on (review s97 L1)", async () => {
    const { pool, held, profile } = manager(1, 1);
    await pool.maintain();
    await Bun.sleep(5);
    await held.finishNext();
    await pool.settle();
    const [member] = await stores.pool.members();
    imageIds.set("i", "engine-failing");
    try {
      expect(await pool.maintain()).toEqual({ retired: 0, started: 0, warm: 0, warming: 0 });
      expect(await pool.claim("anon:alice", profile, 0)).toBeNull();
      expect((await stores.pool.members()).map((m) => m.id)).toEqual([member!.id]);
    } finally {
      imageIds.clear();
    }
    expect((await pool.maintain()).retired).toBe(0);
    expect(await pool.claim("anon:alice", profile, 0)).toBe(member!.id);
  });

  test("a smaller size retires the surplus warm members, oldest first", async () => {
    const { pool, held } = manager(3, 3);
    await pool.maintain();
    await Bun.sleep(5);
    for (let i = 0; i < 3; i++) await held.finishNext();
    await pool.settle();
    const before = await stores.pool.members();
    const smaller = manager(1, 1);
    expect((await smaller.pool.maintain()).retired).toBe(2);
    const after = await stores.pool.members();
    expect(after.map((m) => m.id)).toEqual([before[2]!.id]);
  });
});
