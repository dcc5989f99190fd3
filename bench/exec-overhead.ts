/**
 * The exec hot path: `1+1` through Bay (loopback HTTP → Bay → its Ship) versus
 * the same POST /ipython/exec sent straight to that Ship with the session's
 * secret, interleaved pair by pair on one warm sandbox. Bay's overhead per call
 * is the median (and 99th percentile) of the pairwise differences, so a slow
 * moment of the shared machine lands on both sides of a pair.
 */
import { bayExec, type BenchContext, createSandbox, deleteSandbox, directExec, shipOf } from "./context.ts";
import { median, ms, quantile, ratio, type Row, time } from "./stats.ts";

export async function execOverhead(ctx: BenchContext, runs: number): Promise<Row[]> {
  const { id } = await createSandbox(ctx);
  try {
    await bayExec(ctx, id); // starts the session
    const ship = await shipOf(ctx, id);
    for (let i = 0; i < 20; i++) {
      await bayExec(ctx, id);
      await directExec(ship);
    }
    const bay: number[] = [];
    const dir: number[] = [];
    const diff: number[] = [];
    for (let i = 0; i < runs; i++) {
      const first = i % 2 === 0;
      const a = first ? await time(() => bayExec(ctx, id)) : 0;
      const d = await time(() => directExec(ship));
      const b = first ? a : await time(() => bayExec(ctx, id));
      bay.push(b);
      dir.push(d);
      diff.push(b - d);
    }
    return [
      {
        bench: "warm exec 1+1",
        measure: "p50 / p99",
        runs,
        bay: `${ms(median(bay))} / ${ms(quantile(bay, 0.99))}`,
        direct: `${ms(median(dir))} / ${ms(quantile(dir, 0.99))}`,
        ratio: ratio(median(bay), median(dir)),
      },
      {
        bench: "warm exec 1+1",
        measure: "Bay's overhead per call, p50 / p99 of pairs",
        runs,
        bay: `${ms(median(diff))} / ${ms(quantile(diff, 0.99))}`,
        direct: "-",
        ratio: "-",
      },
    ];
  } finally {
    await deleteSandbox(ctx, id);
  }
}
