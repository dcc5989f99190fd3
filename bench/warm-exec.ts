/**
 * Warm exec: `1+1` through Bay (HTTP on loopback → Bay → Ship) versus the same
 * POST /ipython/exec sent straight to the sandbox's Ship endpoint. Interleaved.
 */
import { shipDirect } from "../tests/e2e/support/e2e.ts";
import { createSandbox, deleteSandbox, expectTwo, type BenchContext } from "./context.ts";
import { median, ms, p95, ratio, time, type Row } from "./stats.ts";

const CODE = JSON.stringify({ code: "1+1" });

export async function warmExec(ctx: BenchContext, runs: number): Promise<Row[]> {
  const id = await createSandbox(ctx);
  try {
    const viaBay = async () => {
      const r = await fetch(`${ctx.bay.url}/v1/sandboxes/${id}/python/exec`, {
        method: "POST",
        headers: { "x-owner": ctx.owner, "content-type": "application/json" },
        body: CODE,
      });
      expectTwo((await r.json()) as object, "bay exec");
    };
    await viaBay(); // starts the session
    const ship = await shipDirect(ctx.bay, id);
    const direct = async () => {
      const r = await fetch(`${ship.endpoint}/ipython/exec`, {
        method: "POST",
        headers: { ...ship.headers, "content-type": "application/json" },
        body: CODE,
      });
      expectTwo((await r.json()) as object, "direct exec");
    };
    for (let i = 0; i < 10; i++) {
      await viaBay();
      await direct();
    }
    const bay: number[] = [];
    const dir: number[] = [];
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        bay.push(await time(viaBay));
        dir.push(await time(direct));
      } else {
        dir.push(await time(direct));
        bay.push(await time(viaBay));
      }
    }
    return [
      {
        bench: "warm exec 1+1",
        measure: "median",
        runs,
        bay: ms(median(bay)),
        direct: ms(median(dir)),
        ratio: ratio(median(bay), median(dir)),
      },
      { bench: "warm exec 1+1", measure: "p95", runs, bay: ms(p95(bay)), direct: ms(p95(dir)), ratio: ratio(p95(bay), p95(dir)) },
      {
        bench: "warm exec 1+1",
        measure: "median overhead",
        runs,
        bay: ms(median(bay) - median(dir)),
        direct: "-",
        ratio: "-",
      },
    ];
  } finally {
    await deleteSandbox(ctx, id);
  }
}
