/** The Prometheus registry's text format, and the cached sandbox counts behind bay_sandboxes. */
import { describe, expect, test } from "bun:test";
import { Counter, formatValue, Gauge, Histogram, MetricsRegistry } from "../../src/bay/observability/metrics-registry.ts";
import { SandboxCounts } from "../../src/bay/observability/sandbox-counts.ts";
import type { Database } from "../../src/bay/store/database.ts";

describe("exposition format", () => {
  test("counters and gauges: HELP, TYPE, one line per label set, label values escaped", async () => {
    const r = new MetricsRegistry();
    const c = r.register(new Counter("t_total", "help with \\ and\nnewline", ["route"]));
    const g = r.register(new Gauge("t_gauge", "a gauge"));
    c.inc({ route: '/a"b\\c\nd' });
    c.inc({ route: '/a"b\\c\nd' }, 2);
    c.inc({ route: "/x" });
    g.set(undefined, 1.5);
    g.add(undefined, -0.5);
    expect(await r.render()).toBe(
      [
        "# HELP t_total help with \\\\ and\\nnewline",
        "# TYPE t_total counter",
        't_total{route="/a\\"b\\\\c\\nd"} 3',
        't_total{route="/x"} 1',
        "# HELP t_gauge a gauge",
        "# TYPE t_gauge gauge",
        "t_gauge 1",
        "",
      ].join("\n"),
    );
  });

  test("histograms: cumulative buckets, +Inf, _sum and _count per label set", async () => {
    const r = new MetricsRegistry();
    const h = r.register(new Histogram("t_seconds", "h", ["op"], [0.1, 1]));
    for (const v of [0.05, 0.1, 0.5, 2]) h.observe({ op: "a" }, v);
    expect(await r.render()).toBe(
      [
        "# HELP t_seconds h",
        "# TYPE t_seconds histogram",
        't_seconds_bucket{op="a",le="0.1"} 2',
        't_seconds_bucket{op="a",le="1"} 3',
        't_seconds_bucket{op="a",le="+Inf"} 4',
        't_seconds_sum{op="a"} 2.65',
        't_seconds_count{op="a"} 4',
        "",
      ].join("\n"),
    );
  });

  test("refuses what would corrupt the output: bad names, missing labels, counters going down, duplicates", () => {
    const r = new MetricsRegistry();
    expect(() => new Counter("bad-name", "x")).toThrow();
    const c = r.register(new Counter("ok_total", "x", ["a"]));
    expect(() => c.inc({} as never)).toThrow("label a missing");
    expect(() => c.inc({ a: "1" }, -1)).toThrow();
    expect(() => r.register(new Counter("ok_total", "again"))).toThrow("registered twice");
  });

  test("special values", () => {
    expect([NaN, Infinity, -Infinity, 3, 0.25].map(formatValue)).toEqual(["NaN", "+Inf", "-Inf", "3", "0.25"]);
  });

  test("collectors run before each render", async () => {
    const r = new MetricsRegistry();
    const g = r.register(new Gauge("t_now", "x"));
    let n = 0;
    r.onCollect(() => g.set(undefined, ++n));
    expect(await r.render()).toContain("t_now 1");
    expect(await r.render()).toContain("t_now 2");
  });
});

describe("SandboxCounts", () => {
  /** A database stand-in that counts queries (the SQL itself runs against libSQL in the API tests). */
  function countingDb() {
    let queries = 0;
    let release: () => void = () => {};
    let gate: Promise<void> | null = null;
    const db = {
      async execute() {
        queries++;
        if (gate) await gate;
        return { rows: [{ profile: "p", status: "idle", n: 3 }] };
      },
    } as unknown as Database;
    return {
      db,
      queries: () => queries,
      hold() {
        gate = new Promise((r) => (release = r));
      },
      release: () => release(),
    };
  }

  test("one query per interval however often it is read; a new one after the interval", async () => {
    const fake = countingDb();
    let now = 1_000;
    const counts = new SandboxCounts(fake.db, 5_000, () => now);
    for (let i = 0; i < 10; i++) expect(await counts.read()).toEqual([{ profile: "p", status: "idle", count: 3 }]);
    expect(fake.queries()).toBe(1);
    now += 5_000;
    await counts.read();
    expect(fake.queries()).toBe(2);
  });

  test("concurrent readers share the query in flight", async () => {
    const fake = countingDb();
    const counts = new SandboxCounts(fake.db, 5_000, () => 0);
    fake.hold();
    const reads = Array.from({ length: 5 }, () => counts.read());
    fake.release();
    await Promise.all(reads);
    expect(fake.queries()).toBe(1);
  });
});
