/**
 * What a storm of renames made by a sandbox's own code costs that sandbox's exec calls
 * while a client reads a recursive watch of the storm's directory (review s70: a
 * directory of 5,000 files moved out of the watch and back in a loop held a Ship's event
 * loop for tens of seconds). A watch of `w` (5,000 files in `w/big`, 4,000 directories
 * in `w/tree`) is read to the end by the bench; `1+1` goes through Bay every 200 ms,
 * first with no storm, then while a Python loop in the sandbox moves `w/big` out of
 * the watch and back, then while it renames `w/big` inside it, then while it moves the
 * whole tree out and back (each time in, a walk of 4,000 directories: cut short at a
 * poll's budget and walked on at the next).
 */
import { SseReader } from "../tests/support/sse.ts";
import { type BenchContext, bayExec, bayJson, createSandbox, deleteSandbox } from "./context.ts";
import { median, ms, p95, ratio, type Row } from "./stats.ts";

const STORM_SECONDS = Number(process.env.BENCH_STORM_SECONDS ?? 15);

/** Exec latencies (ms), one call every 200 ms for `seconds`. */
async function execsFor(ctx: BenchContext, id: string, seconds: number): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await bayExec(ctx, id);
    out.push(performance.now() - t);
    await Bun.sleep(200);
  }
  return out;
}

async function python(ctx: BenchContext, id: string, code: string): Promise<void> {
  const r = await bayJson<{ success?: boolean; error?: unknown }>(ctx, "POST", `/v1/sandboxes/${id}/python/exec`, { code });
  if (r.status !== 200 || r.body.success === false) throw new Error(`watch storm set-up: ${r.status} ${JSON.stringify(r.body)}`);
}

const storm = (moves: string) =>
  [
    "import subprocess, sys",
    `loop = "import os, time\\nend = time.time() + ${STORM_SECONDS}\\nwhile time.time() < end:\\n    ${moves}\\n"`,
    "subprocess.Popen([sys.executable, '-c', loop], start_new_session=True)",
  ].join("\n");

export async function watchStorm(ctx: BenchContext): Promise<Row[]> {
  const { id } = await createSandbox(ctx);
  try {
    await python(
      ctx,
      id,
      [
        "import os",
        "os.makedirs('w/big'); os.makedirs('away')",
        "for i in range(5000): open(f'w/big/f{i}', 'w').close()",
        "for i in range(4000): os.makedirs(f'w/tree/d{i % 50}/e{i}')",
      ].join("\n"),
    );
    const res = await fetch(`${ctx.bay.url}/v1/sandboxes/${id}/filesystem/watch?path=w&recursive=true`, { headers: ctx.auth });
    if (res.status !== 200) throw new Error(`watch: ${res.status} ${await res.text()}`);
    const sse = new SseReader(res);
    await sse.until("ready");
    let events = 0;
    let lost = 0;
    const reading = (async () => {
      for (let e = await sse.next(); e; e = await sse.next()) {
        events++;
        if (e.event === "dropped") lost++;
      }
    })();
    try {
      const quiet = await execsFor(ctx, id, Math.min(STORM_SECONDS, 10));
      const rows: Row[] = [];
      for (const [name, moves] of [
        ["out of the watch and back", "os.rename('w/big', 'away/big'); os.rename('away/big', 'w/big')"],
        ["inside the watch", "os.rename('w/big', 'w/b2'); os.rename('w/b2', 'w/big')"],
        ["the 4,000-directory tree out of the watch and back", "os.rename('w/tree', 'away/tree'); os.rename('away/tree', 'w/tree')"],
      ] as const) {
        const before = events;
        await python(ctx, id, storm(moves));
        const during = await execsFor(ctx, id, STORM_SECONDS);
        await Bun.sleep(1000);
        rows.push({
          bench: `exec 1+1 during a rename storm (${name})`,
          measure: `p50 / p95 / worst, vs no storm (watch of 4,000 dirs read; ${events - before} events read)`,
          runs: during.length,
          bay: `${ms(median(during))} / ${ms(p95(during))} / ${ms(Math.max(...during))}`,
          direct: `${ms(median(quiet))} / ${ms(p95(quiet))} / ${ms(Math.max(...quiet))}`,
          ratio: ratio(median(during), median(quiet)),
        });
      }
      rows.push({
        bench: "exec 1+1 during a rename storm",
        measure: "'dropped' notices the watch's reader got (the storms outran the kernel's queue)",
        runs: 1,
        bay: String(lost),
        direct: "-",
        ratio: "-",
      });
      return rows;
    } finally {
      await sse.cancel().catch(() => {});
      await reading.catch(() => {});
    }
  } finally {
    await deleteSandbox(ctx, id);
  }
}
