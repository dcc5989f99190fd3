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
import { cpuShare, DISK_MEASURES_PER_TICK, MetricsSampler, type MetricsSamplerDeps } from "../../src/bay/domain/metrics-sampler.ts";
import type { ContainerStats } from "../../src/bay/drivers/driver.ts";
import { createLogger } from "../../src/bay/logger.ts";
import { openDatabase } from "../../src/bay/store/database.ts";
import { createStores } from "../../src/bay/store/index.ts";
import type { MetricSampleStore } from "../../src/bay/store/metric-sample-store.ts";

const dir = mkdtempSync(join(tmpdir(), "bay-metrics-sampler-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;
let dbs = 0;

/** A world of `n` running sandboxes (sb0…), their engine readings scripted by `cpuNs`. */
async function world(n: number, opts: { samples?: MetricSampleStore } = {}) {
  const samples = opts.samples ?? createStores(await openDatabase({ url: `file:${join(dir, `m${dbs++}.db`)}` })).metricSamples;
  const clock = { now: 1_000_000_000_000 };
  const cpuNs = new Map<string, number>();
  const failing = new Set<string>();
  let live = Array.from({ length: n }, (_, i) => ({ id: `ses${i}`, sandboxId: `sb${i}`, status: "ready", containerId: `c${i}` }));
  const measured: string[] = [];
  const deps: MetricsSamplerDeps = {
    stores: {
      sessions: { listActive: async () => live },
      sandboxes: {
        get: async (id: string) => ({ id, deletedAt: null, workspaceId: `ws-${id}`, profileId: "python" }),
      },
      workspaces: { get: async (id: string) => ({ id, sizeLimitMb: 100 }) },
      metricSamples: samples,
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
      return 4096;
    },
    logger: createLogger("error", () => {}),
    now: () => clock.now,
  };
  const sampler = new MetricsSampler(deps, { intervalSeconds: 5, historySeconds: 60 });
  return {
    sampler,
    samples,
    clock,
    cpuNs,
    failing,
    measured,
    end: (sessionId: string) => {
      live = live.filter((s) => s.id !== sessionId);
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
    expect((await w.sampler.runOnce()).sampled).toBe(0);
    w.clock.now += 5000;
    w.cpuNs.set("c0", 1_000_000_000); // 1 s of CPU in 5 s: 20 % of one CPU
    expect(await w.sampler.runOnce()).toEqual({ sampled: 1, purged: 0, errors: 0 });
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
    for (const w of [a, b]) await w.sampler.runOnce();
    a.clock.now += 5000;
    b.clock.now += 5001;
    a.cpuNs.set("c0", 500_000_000);
    b.cpuNs.set("c0", 4_000_000_000);
    expect((await a.sampler.runOnce()).sampled).toBe(1);
    expect((await b.sampler.runOnce()).sampled).toBe(1); // written OR IGNOREd
    const rows = await a.samples.list("sb0", 0, Number.MAX_SAFE_INTEGER);
    expect(rows.map((r) => r.cpuUsedPct)).toEqual([10]);
  });

  test("samples older than the history are purged; a window reads oldest first", async () => {
    const w = await world(1);
    await w.sampler.runOnce();
    const slots: number[] = [];
    for (let i = 0; i < 20; i++) {
      w.clock.now += 5000;
      await w.sampler.runOnce();
      slots.push(w.clock.now - (w.clock.now % 5000));
    }
    const kept = await w.samples.list("sb0", 0, Number.MAX_SAFE_INTEGER);
    // 60 s of history: the samples of the last 60 s (and the one at its edge).
    expect(kept.map((r) => r.at)).toEqual(slots.filter((at) => at >= w.clock.now - 60_000));
    const window = await w.samples.list("sb0", slots[15]!, slots[17]!);
    expect(window.map((r) => r.at)).toEqual(slots.slice(15, 18));
  });

  test("du runs at a bounded rate however many sandboxes run; a failing reading does not stop the others", async () => {
    const w = await world(10);
    w.failing.add("c9");
    const first = await w.sampler.runOnce();
    expect(first).toEqual({ sampled: 0, purged: 0, errors: 1 });
    expect(w.measured).toEqual(["ws-sb0", "ws-sb1"]);
    w.clock.now += 5000;
    // Measured 5 s ago are not measured again; the next two, never measured, are; the four known are sampled.
    expect((await w.sampler.runOnce()).sampled).toBe(2 * DISK_MEASURES_PER_TICK);
    expect(w.measured).toEqual(["ws-sb0", "ws-sb1", "ws-sb2", "ws-sb3"]);
    for (let i = 0; i < 5; i++) {
      w.clock.now += 5000;
      await w.sampler.runOnce();
    }
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => w.samples.list(`sb${i}`, 0, Number.MAX_SAFE_INTEGER)));
    expect(all.map((rows) => rows.length > 0)).toEqual(Array.from({ length: 10 }, (_, i) => i !== 9));
    // Every workspace measured once in 7 ticks of 2: nothing measured again within its minute.
    expect(w.measured.length).toBeLessThanOrEqual(7 * DISK_MEASURES_PER_TICK);
    expect(new Set(w.measured).size).toBe(w.measured.length);
  });

  test("an ended session's reading is forgotten: a new one starts with no share from the old", async () => {
    const w = await world(1);
    await w.sampler.runOnce();
    w.end("ses0");
    w.clock.now += 5000;
    expect((await w.sampler.runOnce()).sampled).toBe(0);
    expect(await w.samples.list("sb0", 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
  });

  test("sampling off (interval 0): start() sets no timer", async () => {
    const w = await world(1);
    const off = new MetricsSampler((w.sampler as unknown as { deps: MetricsSamplerDeps }).deps, { intervalSeconds: 0, historySeconds: 60 });
    off.start();
    expect((off as unknown as { timer: unknown }).timer).toBeNull();
    await off.stop();
  });
});
