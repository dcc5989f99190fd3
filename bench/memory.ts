/**
 * Bay's resident memory: idle (after start-up and a few requests, once its
 * collector has run), and its peak growth over that while a 256 MiB file
 * streams up through it and back down.
 */
import { measureE2bWrite, measureTransfer } from "../tests/e2e/support/memory.ts";
import { rssBytes } from "../tests/e2e/support/e2e.ts";
import type { BenchContext } from "./context.ts";
import type { Row } from "./stats.ts";

const MiB = 1024 * 1024;
const f = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const signed = (b: number) => `${b >= 0 ? "+" : ""}${f(b)}`;

/** Bay's RSS with nothing to do: sampled for a few seconds, the lowest reading. */
export async function idleRss(ctx: BenchContext): Promise<number> {
  let low = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    low = Math.min(low, await rssBytes(ctx.bay.pid));
    await Bun.sleep(300);
  }
  return low;
}

/**
 * On a Bay started for this alone (no warm pool, nothing else run on it): its
 * idle RSS after a few requests, then the growth during the transfers. With a
 * baseline Bay (another checkout), its idle RSS beside.
 */
export async function bayMemory(ctx: BenchContext, baseline?: BenchContext, sizeMiB = 256): Promise<Row[]> {
  const warmUp = async (c: BenchContext) => {
    for (let i = 0; i < 20; i++) await (await fetch(`${c.bay.url}/v1/sandboxes`, { headers: c.auth })).text();
  };
  await warmUp(ctx);
  const idle = await idleRss(ctx);
  let base: number | null = null;
  if (baseline) {
    await warmUp(baseline);
    base = await idleRss(baseline);
  }
  const m = await measureTransfer(ctx.bay.url, ctx.bay.pid, ctx.auth, sizeMiB);
  const e2b = await measureE2bWrite(ctx.bay.url, ctx.bay.pid, ctx.auth.authorization!.slice("Bearer ".length), sizeMiB);
  return [
    {
      bench: `Bay RSS, idle (a fresh Bay after 20 requests)${baseline ? ", this build vs baseline" : ""}`,
      measure: "lowest of 10 samples",
      runs: 10,
      bay: f(idle),
      direct: base === null ? "-" : f(base),
      ratio: base === null ? "-" : `${(idle / base).toFixed(2)}x`,
    },
    {
      bench: `Bay RSS growth during a ${sizeMiB} MiB upload / download`,
      measure: "peak over baseline",
      runs: 1,
      bay: `${signed(m.growthUp)} / ${signed(m.growthDown)}`,
      direct: "-",
      ratio: "-",
    },
    {
      bench: `Bay RSS growth during a ${sizeMiB} MiB E2B multipart write (files.write)`,
      measure: "peak over baseline",
      runs: 1,
      bay: signed(e2b),
      direct: "-",
      ratio: "-",
    },
  ];
}

/** The benches' own Bay, after everything it ran (its heap's high-water mark). */
export async function rssAfter(ctx: BenchContext): Promise<Row> {
  return {
    bench: "Bay RSS after all the benches above",
    measure: "lowest of 10 samples",
    runs: 10,
    bay: f(await idleRss(ctx)),
    direct: "-",
    ratio: "-",
  };
}
