/**
 * The exec hot path: `1+1` through Bay (loopback HTTP → Bay → its Ship) versus
 * the same POST /ipython/exec sent straight to that Ship with the session's
 * secret, interleaved pair by pair on one warm sandbox. Bay's overhead per call
 * is the median (and 99th percentile) of the pairwise differences, so a slow
 * moment of the shared machine lands on both sides of a pair.
 *
 * With a baseline Bay (another checkout, BENCH_BASELINE_ROOT), its pairs are
 * interleaved with this build's, each on its own sandbox.
 */
import { bayExec, type BenchContext, createSandbox, deleteSandbox, directExec, shipOf } from "./context.ts";
import { median, ms, quantile, ratio, type Row, time } from "./stats.ts";

interface Side {
  ctx: BenchContext;
  id: string;
  ship: { endpoint: string; secret: string };
  bay: number[];
  direct: number[];
  diff: number[];
}

async function prepare(ctx: BenchContext): Promise<Side> {
  const { id } = await createSandbox(ctx);
  await bayExec(ctx, id); // starts the session
  const ship = await shipOf(ctx, id);
  for (let i = 0; i < 20; i++) {
    await bayExec(ctx, id);
    await directExec(ship);
  }
  return { ctx, id, ship, bay: [], direct: [], diff: [] };
}

/** One pair: Bay then direct, or direct then Bay. */
async function pair(s: Side, bayFirst: boolean): Promise<void> {
  let b = 0;
  if (bayFirst) b = await time(() => bayExec(s.ctx, s.id));
  const d = await time(() => directExec(s.ship));
  if (!bayFirst) b = await time(() => bayExec(s.ctx, s.id));
  s.bay.push(b);
  s.direct.push(d);
  s.diff.push(b - d);
}

function rows(s: Side, runs: number, label: string): Row[] {
  return [
    {
      bench: `warm exec 1+1${label}`,
      measure: "p50 / p99",
      runs,
      bay: `${ms(median(s.bay))} / ${ms(quantile(s.bay, 0.99))}`,
      direct: `${ms(median(s.direct))} / ${ms(quantile(s.direct, 0.99))}`,
      ratio: ratio(median(s.bay), median(s.direct)),
    },
    {
      bench: `warm exec 1+1${label}`,
      measure: "Bay's overhead per call, p50 / p99 of pairs",
      runs,
      bay: `${ms(median(s.diff))} / ${ms(quantile(s.diff, 0.99))}`,
      direct: "-",
      ratio: "-",
    },
  ];
}

export async function execOverhead(ctx: BenchContext, runs: number, baseline?: BenchContext): Promise<Row[]> {
  const sides: Side[] = [];
  try {
    sides.push(await prepare(ctx));
    if (baseline) sides.push(await prepare(baseline));
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) await pair(s, i % 4 < 2);
    }
    const [mine, base] = sides;
    return [...rows(mine!, runs, baseline ? " (this build)" : ""), ...(base ? rows(base, runs, " (baseline)") : [])];
  } finally {
    for (const s of sides) await deleteSandbox(s.ctx, s.id);
  }
}
