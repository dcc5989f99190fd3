/**
 * The warm pool, side by side with the floor it cannot beat:
 *
 * * pool-hit create → first `1+1`: POST /v1/sandboxes (claims a warm member,
 *   answered `ready`) then its first exec, timed together, against one exec
 *   sent straight to that sandbox's Ship right after (what a warm exec costs);
 *   every run waits (untimed) until a warm member is there, and fails if its
 *   create was not a pool hit;
 * * 20 concurrent creates on a full pool of 20: each create's latency.
 */
import { bayExec, type BenchContext, bayJson, deleteSandbox, directExec, POOL_PROFILE, shipOf } from "./context.ts";
import { median, ms, p95, quantile, ratio, type Row, time } from "./stats.ts";

/** Waits (untimed, bounded) until the pool holds `n` warm members. */
export async function untilWarm(ctx: BenchContext, n: number, ms = 600_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const warm = (await ctx.stores.pool.members()).filter((m) => m.profileId === POOL_PROFILE && m.state === "warm").length;
    if (warm >= n) return;
    if (Date.now() > deadline) throw new Error(`the warm pool did not reach ${n} members in ${ms / 1000} s (has ${warm})`);
    await Bun.sleep(200);
  }
}

async function createPooled(ctx: BenchContext): Promise<string> {
  const r = await bayJson<{ id: string; status: string }>(ctx, "POST", "/v1/sandboxes", { profile: POOL_PROFILE });
  if (r.status !== 201) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
  if (r.body.status !== "ready") throw new Error(`create was not a warm-pool hit (status ${r.body.status})`);
  return r.body.id;
}

export async function poolHitFirstExec(ctx: BenchContext, runs: number): Promise<Row[]> {
  const hit: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    await untilWarm(ctx, 1);
    let id = "";
    const t = await time(async () => {
      id = await createPooled(ctx);
      await bayExec(ctx, id);
    });
    const ship = await shipOf(ctx, id);
    const d = await time(() => directExec(ship));
    if (i > 0) {
      // The first round warms Bay's own code paths, like the other benches' warm-up rounds.
      hit.push(t);
      direct.push(d);
    }
    await deleteSandbox(ctx, id);
  }
  return [
    {
      bench: "pool hit: create → first 1+1, vs one direct Ship exec",
      measure: "p50 / p95",
      runs,
      bay: `${ms(median(hit))} / ${ms(p95(hit))}`,
      direct: `${ms(median(direct))} / ${ms(p95(direct))}`,
      ratio: ratio(median(hit), median(direct)),
    },
  ];
}

export async function concurrentPoolCreates(ctx: BenchContext, n: number): Promise<Row[]> {
  await untilWarm(ctx, n);
  const latencies: number[] = [];
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      const t0 = performance.now();
      const id = await createPooled(ctx);
      latencies.push(performance.now() - t0);
      ids.push(id);
    }),
  );
  await Promise.all(ids.map((id) => deleteSandbox(ctx, id)));
  return [
    {
      bench: `${n} concurrent creates on a pool of ${n} (all hits)`,
      measure: "p50 / p95 / max",
      runs: n,
      bay: `${ms(median(latencies))} / ${ms(p95(latencies))} / ${ms(quantile(latencies, 1))}`,
      direct: "-",
      ratio: "-",
    },
  ];
}
