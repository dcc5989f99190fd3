/**
 * The metrics sampler's logic on a real libSQL file: the CPU share from two readings of
 * one session, nothing stored for a session's first interval, one row per sandbox and
 * interval however many replicas sample it, purge by age, `du` at a bounded rate, a
 * failing reading that does not stop the others, and readings forgotten when a session
 * ends. Sessions, sandboxes and the engine are scripted (the Docker e2e runs the real ones:
 * tests/e2e/sandbox-metrics.test.ts).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cpuShare,
  DISK_MEASURES_IN_FLIGHT,
  DISK_REMEASURE_MS,
  MetricsSampler,
  type MetricsSamplerDeps,
} from "../../src/bay/domain/metrics-sampler.ts";
import type { ContainerStats } from "../../src/bay/drivers/driver.ts";
import { createLogger } from "../../src/bay/logger.ts";
import { openDatabase } from "../../src/bay/store/database.ts";
import { createStores } from "../../src/bay/store/index.ts";
import type { MetricSampleStore } from "../../src/bay/store/metric-sample-store.ts";

const dir = mkdtempSync(join(tmpdir(), "bay-metrics-sampler-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;
let dbs = 0;

/** A world of `n` running sandboxes (sb0…), their engine readings scripted by `cpuNs`, their `du` by `du`. */
async function world(n: number, opts: { samples?: MetricSampleStore } = {}) {
  const samples = opts.samples ?? createStores(await openDatabase({ url: `file:${join(dir, `m${dbs++}.db`)}` })).metricSamples;
  const clock = { now: 1_000_000_000_000 };
  const cpuNs = new Map<string, number>();
  const failing = new Set<string>();
  let live = Array.from({ length: n }, (_, i) => ({
    sessionId: `ses${i}`,
    sandboxId: `sb${i}`,
    containerId: `c${i}`,
    profileId: "python",
    workspaceId: `ws-sb${i}`,
    workspaceSizeLimitMb: 100,
  }));
  const measured: string[] = [];
  const du = { fn: async (_id: string) => 4096 };
  const deps: MetricsSamplerDeps = {
    stores: {
      workspaces: { get: async (id: string) => ({ id, sizeLimitMb: 100 }) },
      metricSamples: {
        targets: async () => live,
        insert: (x: Parameters<MetricSampleStore["insert"]>[0]) => samples.insert(x),
        purgeBefore: (before: number) => samples.purgeBefore(before),
      },
    } as unknown as MetricsSamplerDeps["stores"],
    driver: {
      containerStats: async (id: string): Promise<ContainerStats | null> => {
        if (failing.has(id)) throw new Error("engine hiccup");
        return {
          cpuUsedPct: 0,
          memoryUsedBytes: 10 * MiB,
          memoryLimitBytes: 512 * MiB,
          memoryCacheBytes: MiB,
          cpuTotalNs: cpuNs.get(id) ?? 0,
        };
      },
    },
    profiles: { forSandbox: () => ({ cpus: 2, memory_mb: 512 }) } as unknown as MetricsSamplerDeps["profiles"],
    diskKnown: () => null,
    diskMeasure: async (ws) => {
      measured.push(ws.id);
      return du.fn(ws.id);
    },
    logger: createLogger("error", () => {}),
    now: () => clock.now,
  };
  const sampler = new MetricsSampler(deps, { intervalSeconds: 5, historySeconds: 60 });
  /** One tick `ms` after the last, then the workspace measurements it started. */
  const tick = async (ms = 5000) => {
    clock.now += ms;
    const report = await sampler.runOnce();
    await sampler.settled();
    return report;
  };
  return {
    sampler,
    samples,
    clock,
    cpuNs,
    failing,
    measured,
    du,
    tick,
    deps,
    end: (sessionId: string) => {
      live = live.filter((s) => s.sessionId !== sessionId);
    },
  };
}

describe("metrics sampler", () => {
  test("CPU share between two readings: percent of one CPU, within 0 and 100 × cpus", () => {
    expect(cpuShare({ cpuTotalNs: 0, at: 0 }, { cpuTotalNs: 2_500_000_000, at: 5000 }, 2)).toBe(50);
    expect(cpuShare({ cpuTotalNs: 0, at: 0 }, { cpuTotalNs: 50_000_000_000, at: 5000 }, 2)).toBe(200);
    expect(cpuShare({ cpuTotalNs: 9, at: 0 }, { cpuTotalNs: 1, at: 5000 }, 2)).toBe(0); // a restarted counter
    expect(cpuShare({ cpuTotalNs: 0, at: 5000 }, { cpuTotalNs: 1, at: 5000 }, 2)).toBe(0);
  });

  test("a session's first interval stores nothing; the next stores its share, memory and disk", async () => {
    const w = await world(1);
    expect(await w.tick(0)).toMatchObject({ sampled: 0, errors: 0 });
    w.cpuNs.set("c0", 1_000_000_000); // 1 s of CPU in 5 s: 20 % of one CPU
    expect(await w.tick()).toEqual({ sampled: 1, purged: 0, errors: 0 });
    const rows = await w.samples.list("sb0", 0, Number.MAX_SAFE_INTEGER);
    expect(rows).toEqual([
      {
        sandboxId: "sb0",
        at: w.clock.now - (w.clock.now % 5000),
        cpuCount: 2,
        cpuUsedPct: 20,
        memoryUsedBytes: 10 * MiB,
        memoryLimitBytes: 512 * MiB,
        memoryCacheBytes: MiB,
        diskUsedBytes: 4096,
        diskLimitBytes: 100 * MiB,
      },
    ]);
  });

  test("two replicas sampling one interval keep one row (the first written)", async () => {
    const a = await world(1);
    const b = await world(1, { samples: a.samples });
    await a.tick(0);
    await b.tick(0);
    a.cpuNs.set("c0", 500_000_000);
    b.cpuNs.set("c0", 4_000_000_000);
    expect((await a.tick(5000)).sampled).toBe(1);
    expect((await b.tick(5001)).sampled).toBe(1); // written OR IGNOREd
    const rows = await a.samples.list("sb0", 0, Number.MAX_SAFE_INTEGER);
    expect(rows.map((r) => r.cpuUsedPct)).toEqual([10]);
  });

  test("samples older than the history are purged; a window reads oldest first", async () => {
    const w = await world(1);
    await w.tick(0);
    const slots: number[] = [];
    for (let i = 0; i < 20; i++) {
      await w.tick();
      slots.push(w.clock.now - (w.clock.now % 5000));
    }
    const kept = await w.samples.list("sb0", 0, Number.MAX_SAFE_INTEGER);
    // 60 s of history: the samples of the last 60 s.
    expect(kept.map((r) => r.at)).toEqual(slots.filter((at) => at >= w.clock.now - 60_000));
    const window = await w.samples.list("sb0", slots[15]!, slots[17]!);
    expect(window.map((r) => r.at)).toEqual(slots.slice(15, 18));
  });

  test("du: a bounded number at once, each workspace again only after a minute, failures too; no sample waits for it", async () => {
    const w = await world(10);
    w.failing.add("c9");
    w.du.fn = async (id) => {
      if (id === "ws-sb0") throw new Error("du failed");
      return 4096;
    };
    expect(await w.tick(0)).toEqual({ sampled: 0, purged: 0, errors: 1 });
    expect(w.measured).toEqual(["ws-sb0", "ws-sb1"].slice(0, DISK_MEASURES_IN_FLIGHT));
    // Every running sandbox is sampled from its second reading on, its disk 0 until measured.
    expect((await w.tick()).sampled).toBe(9);
    for (let i = 0; i < 3; i++) await w.tick();
    expect(w.measured).toEqual(Array.from({ length: 10 }, (_, i) => `ws-sb${i}`));
    const disks = await Promise.all(
      Array.from({ length: 9 }, async (_, i) => (await w.samples.list(`sb${i}`, 0, Number.MAX_SAFE_INTEGER)).at(-1)!.diskUsedBytes),
    );
    expect(disks).toEqual([0, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096]);
    // The failed one is tried again a minute after its try, like the others after theirs.
    const before = w.measured.length;
    await w.tick(DISK_REMEASURE_MS - 20_000);
    expect(w.measured.slice(before)).toEqual(["ws-sb0", "ws-sb1"]);
  });

  test("a workspace that never finishes measuring holds no tick, and no more than the bound at once", async () => {
    const w = await world(5);
    w.du.fn = () => new Promise<number>(() => {});
    await w.sampler.runOnce();
    for (let i = 0; i < 5; i++) {
      w.clock.now += DISK_REMEASURE_MS;
      const report = await w.sampler.runOnce();
      expect(report.sampled).toBe(5);
    }
    expect(w.measured).toHaveLength(DISK_MEASURES_IN_FLIGHT);
  });

  test("an ended session's reading is forgotten: a new one starts with no share from the old", async () => {
    const w = await world(1);
    await w.tick(0);
    w.end("ses0");
    expect((await w.tick()).sampled).toBe(0);
    expect(await w.samples.list("sb0", 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
  });

  test("sampling off (interval 0): start() sets no timer", async () => {
    const w = await world(1);
    const off = new MetricsSampler(w.deps, { intervalSeconds: 0, historySeconds: 60 });
    off.start();
    expect((off as unknown as { timer: unknown }).timer).toBeNull();
    await off.stop();
  });
});

test("the sandboxes to sample: ready sessions that are their sandbox's current one, of live sandboxes, in one query", async () => {
  const stores = createStores(await openDatabase({ url: `file:${join(dir, "targets.db")}` }));
  const now = Date.now();
  const run = (sql: string, args: unknown[]) => stores.db.execute({ sql, args: args as never });
  for (const [ws, sb, session, status, deleted, current] of [
    ["w1", "s1", "x1", "ready", null, true],
    ["w2", "s2", "x2", "starting", null, true],
    ["w3", "s3", "x3", "ready", now, true],
    ["w4", "s4", "x4", "ready", null, false],
  ] as const) {
    await run("INSERT INTO workspaces (id, owner, managed, volume_name, size_limit_mb, created_at) VALUES (?, 'o', 1, ?, 7, ?)", [
      ws,
      `v-${ws}`,
      now,
    ]);
    await run(
      "INSERT INTO sandboxes (id, owner, profile_id, workspace_id, created_at, current_session_id, deleted_at) VALUES (?, 'o', 'python', ?, ?, ?, ?)",
      [sb, ws, now, current ? session : null, deleted],
    );
    await run("INSERT INTO sessions (id, sandbox_id, status, container_id, created_at) VALUES (?, ?, ?, ?, ?)", [
      session,
      sb,
      status,
      `c-${session}`,
      now,
    ]);
  }
  expect(await stores.metricSamples.targets()).toEqual([
    { sessionId: "x1", sandboxId: "s1", containerId: "c-x1", profileId: "python", workspaceId: "w1", workspaceSizeLimitMb: 7 },
  ]);
});
