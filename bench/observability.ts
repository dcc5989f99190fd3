/**
 * What observability costs. (1) The access log and request context on the
 * exec hot path: warm `1+1` through two Bays, one writing an access line per
 * request and one not (both at log level info, stderr to a file), interleaved.
 * With BENCH_BASELINE_ROOT=<another checkout> (e.g. main before this work) a
 * third Bay from that checkout runs too, for the before/after ratio.
 * (2) GET /metrics with 100 and 1000 live sandboxes, the database-derived
 * gauges queried on every scrape (metrics.cache_seconds: 0), against GET
 * /v1/profiles (an in-memory answer) as the floor of a request.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BayProcess, spawnBay } from "../tests/e2e/support/e2e.ts";
import { expectTwo } from "./context.ts";
import { median, ms, p95, ratio, type Row, time } from "./stats.ts";

const CODE = JSON.stringify({ code: "1+1" });

async function warmSandbox(bay: BayProcess): Promise<() => Promise<void>> {
  const headers = { "x-owner": "bench", "content-type": "application/json" };
  const created = await fetch(`${bay.url}/v1/sandboxes`, { method: "POST", headers, body: "{}" });
  const { id } = (await created.json()) as { id: string };
  const exec = async () => {
    const r = await fetch(`${bay.url}/v1/sandboxes/${id}/python/exec`, { method: "POST", headers, body: CODE });
    expectTwo((await r.json()) as object, "exec");
  };
  for (let i = 0; i < 10; i++) await exec(); // starts the session, warms both sides
  return exec;
}

export async function accessLogCost(runs: number): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "bay-bench-obs-"));
  const bays: BayProcess[] = [];
  try {
    const env = { BAY_LOG_LEVEL: "info" };
    const off = await spawnBay({ ...env, BAY_LOG_ACCESS: "false" }, { stderrFile: join(dir, "off.log") });
    bays.push(off);
    const on = await spawnBay({ ...env, BAY_LOG_ACCESS: "true" }, { stderrFile: join(dir, "on.log") });
    bays.push(on);
    const baselineRoot = process.env.BENCH_BASELINE_ROOT;
    const base = baselineRoot ? await spawnBay(env, { root: baselineRoot, stderrFile: join(dir, "base.log") }) : null;
    if (base) bays.push(base);
    const sides = [await warmSandbox(off), await warmSandbox(on), ...(base ? [await warmSandbox(base)] : [])];
    const samples: number[][] = sides.map(() => []);
    for (let i = 0; i < runs; i++) {
      // Rotate the order so no side always runs first.
      for (let k = 0; k < sides.length; k++) {
        const j = (i + k) % sides.length;
        samples[j]!.push(await time(sides[j]!));
      }
    }
    const [a, b, c] = samples as [number[], number[], number[] | undefined];
    const rows: Row[] = [
      {
        bench: "warm exec: access log on / off",
        measure: "median",
        runs,
        bay: ms(median(b)),
        direct: ms(median(a)),
        ratio: ratio(median(b), median(a)),
      },
      { bench: "warm exec: access log on / off", measure: "p95", runs, bay: ms(p95(b)), direct: ms(p95(a)), ratio: ratio(p95(b), p95(a)) },
    ];
    if (c) {
      rows.push({
        bench: "warm exec: this build / baseline",
        measure: "median",
        runs,
        bay: ms(median(b)),
        direct: ms(median(c)),
        ratio: ratio(median(b), median(c)),
      });
    }
    return rows;
  } finally {
    for (const bay of bays) await bay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function createMany(bay: BayProcess, from: number, to: number): Promise<void> {
  // 50 per owner: the default per-owner quota.
  const create = (i: number) =>
    fetch(`${bay.url}/v1/sandboxes`, {
      method: "POST",
      headers: { "x-owner": `bench-${Math.floor(i / 50)}`, "content-type": "application/json" },
      body: "{}",
    }).then((r) => {
      if (r.status !== 201) throw new Error(`create sandbox ${i}: ${r.status}`);
    });
  for (let i = from; i < to; i += 10) await Promise.all(Array.from({ length: Math.min(10, to - i) }, (_, k) => create(i + k)));
}

export async function scrapeCost(runs: number): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "bay-bench-scrape-"));
  const config = join(dir, "bay.yaml");
  writeFileSync(config, "metrics: { cache_seconds: 0 }\n");
  const bay = await spawnBay({ BAY_CONFIG: config });
  try {
    const rows: Row[] = [];
    const scrape = async () => {
      const r = await fetch(`${bay.url}/metrics`);
      if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
      await r.text();
    };
    const floor = async () => {
      const r = await fetch(`${bay.url}/v1/profiles`, { headers: { "x-owner": "bench" } });
      await r.text();
    };
    let have = 0;
    for (const n of [100, 1000]) {
      await createMany(bay, have, n);
      have = n;
      for (let i = 0; i < 5; i++) await scrape();
      const s: number[] = [];
      const f: number[] = [];
      for (let i = 0; i < runs; i++) {
        s.push(await time(scrape));
        f.push(await time(floor));
      }
      const bytes = (await (await fetch(`${bay.url}/metrics`)).text()).length;
      rows.push({
        bench: `GET /metrics, ${n} sandboxes (${(bytes / 1024).toFixed(0)} KiB) / GET /v1/profiles`,
        measure: "median",
        runs,
        bay: ms(median(s)),
        direct: ms(median(f)),
        ratio: ratio(median(s), median(f)),
      });
    }
    return rows;
  } finally {
    await bay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same switch measured in-process, where HTTP and Ship noise cannot hide
 * it: GET /v1/profiles through the whole app (request id, context, metrics,
 * auth, rate limit) with and without the access line, the line written to
 * /dev/null as JSON. Measured in CPU time of this process (user + system), so
 * other load on a shared machine does not count.
 */
export async function accessLogCpu(runs: number): Promise<Row[]> {
  const { createTestBay } = await import("../tests/support/harness.ts");
  const { createLogger } = await import("../src/bay/logger.ts");
  const sink = Bun.file("/dev/null").writer();
  const logger = createLogger("info", (l) => sink.write(`${l}\n`));
  const off = await createTestBay({ logger, config: { log: { access: false }, limits: { rate_limit_per_minute: 1e9 } } });
  const on = await createTestBay({ logger, config: { log: { access: true }, limits: { rate_limit_per_minute: 1e9 } } });
  // The baseline checkout's own harness and logger: its whole app, before this work.
  const root = process.env.BENCH_BASELINE_ROOT;
  const base = root
    ? await (await import(join(root, "tests/support/harness.ts"))).createTestBay({
        logger: (await import(join(root, "src/bay/logger.ts"))).createLogger("info", (l: string) => sink.write(`${l}\n`)),
        config: { limits: { rate_limit_per_minute: 1e9 } },
      })
    : null;
  try {
    const batch = 200;
    const timeBatch = async (t: { call: typeof on.call }) => {
      const t0 = process.cpuUsage();
      for (let i = 0; i < batch; i++) await (await t.call("GET", "/v1/profiles")).text();
      const d = process.cpuUsage(t0);
      return (d.user + d.system) / 1000 / batch;
    };
    const sides = [off, on, ...(base ? [base] : [])];
    const samples: number[][] = sides.map(() => []);
    for (let i = 0; i < 5; i++) for (const t of sides) await timeBatch(t);
    for (let i = 0; i < runs; i++) {
      for (let k = 0; k < sides.length; k++) {
        const j = (i + k) % sides.length;
        samples[j]!.push(await timeBatch(sides[j]!));
      }
    }
    const [a, b, c] = samples as [number[], number[], number[] | undefined];
    const us = (v: number) => `${(v * 1000).toFixed(1)} µs`;
    const measure = `median of ${batch}-request means`;
    const rows: Row[] = [
      {
        bench: "in-process request, CPU: access log on / off",
        measure,
        runs,
        bay: us(median(b)),
        direct: us(median(a)),
        ratio: ratio(median(b), median(a)),
      },
    ];
    if (c) {
      rows.push({
        bench: "in-process request, CPU: this build / baseline",
        measure,
        runs,
        bay: us(median(b)),
        direct: us(median(c)),
        ratio: ratio(median(b), median(c)),
      });
    }
    return rows;
  } finally {
    await off.close();
    await on.close();
    await base?.close();
    await sink.end();
  }
}
