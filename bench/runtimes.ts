/**
 * What the python-gvisor profile costs against python-default (runc), both through
 * Bay and otherwise identical (runc: the bench's python-cold profile, same image,
 * no warm pool): cold start (create → first `1+1` result), warm
 * `1+1` exec, and a container's memory after its first exec (the figure
 * `docker stats` shows: usage minus inactive file cache). Runs alternate, side
 * by side; read the ratios.
 */
import { type BenchContext, COLD_PROFILE, GVISOR_PROFILE, createSandbox, deleteSandbox, expectTwo } from "./context.ts";
import { median, ms, p95, ratio, time, type Row } from "./stats.ts";

const GVISOR = GVISOR_PROFILE;
const RUNC = COLD_PROFILE;
const MiB = 1024 * 1024;

async function exec(ctx: BenchContext, id: string, where: string): Promise<void> {
  const res = await fetch(`${ctx.bay.url}/v1/sandboxes/${id}/python/exec`, {
    method: "POST",
    headers: { ...ctx.auth, "content-type": "application/json" },
    body: JSON.stringify({ code: "1+1" }),
  });
  expectTwo((await res.json()) as object, where);
}

async function coldStart(ctx: BenchContext, profile: string): Promise<number> {
  let id = "";
  const t = await time(async () => {
    id = (await createSandbox(ctx, profile)).id;
    await exec(ctx, id, `${profile} cold start`);
  });
  await deleteSandbox(ctx, id);
  return t;
}

/** Memory of the sandbox's container as `docker stats` reports it (cgroup usage minus inactive file cache). */
async function containerMemory(ctx: BenchContext, sandboxId: string): Promise<number> {
  const [c] = await ctx.docker.listContainers({
    filters: { label: [`bay.sandbox_id=${sandboxId}`, `bay.instance_id=${ctx.bay.instanceId}`] },
  });
  if (!c) throw new Error(`no container for ${sandboxId}`);
  const s = (await ctx.docker.getContainer(c.Id).stats({ stream: false })) as {
    memory_stats: { usage?: number; stats?: Record<string, number> };
  };
  const st = s.memory_stats.stats ?? {};
  return (s.memory_stats.usage ?? 0) - (st.total_inactive_file ?? st.inactive_file ?? 0);
}

export interface RuntimeBench {
  rows: Row[];
  lines: string[];
}

export async function runtimes(ctx: BenchContext, execRuns: number): Promise<RuntimeBench> {
  // One untimed start of each, so both images and runsc's own files are in the page cache.
  await coldStart(ctx, GVISOR);
  await coldStart(ctx, RUNC);
  const cold: Record<string, number[]> = { [GVISOR]: [], [RUNC]: [] };
  for (let i = 0; i < ctx.runs; i++) {
    const order = i % 2 === 0 ? [GVISOR, RUNC] : [RUNC, GVISOR];
    for (const p of order) cold[p]!.push(await coldStart(ctx, p));
  }

  const g = (await createSandbox(ctx, GVISOR)).id;
  const r = (await createSandbox(ctx, RUNC)).id;
  try {
    await exec(ctx, g, "gvisor warm-up");
    await exec(ctx, r, "runc warm-up");
    const mem = { g: await containerMemory(ctx, g), r: await containerMemory(ctx, r) };
    for (let i = 0; i < 10; i++) {
      await exec(ctx, g, "gvisor warm-up");
      await exec(ctx, r, "runc warm-up");
    }
    const warm: Record<string, number[]> = { g: [], r: [] };
    for (let i = 0; i < execRuns; i++) {
      const order = i % 2 === 0 ? (["g", "r"] as const) : (["r", "g"] as const);
      for (const side of order) warm[side]!.push(await time(() => exec(ctx, side === "g" ? g : r, "warm exec")));
    }
    const cg = median(cold[GVISOR]!);
    const cr = median(cold[RUNC]!);
    const rows: Row[] = [
      { bench: "cold start", measure: "median, create → first 1+1", runs: ctx.runs, bay: ms(cg), direct: ms(cr), ratio: ratio(cg, cr) },
      {
        bench: "warm exec 1+1",
        measure: "median",
        runs: execRuns,
        bay: ms(median(warm.g!)),
        direct: ms(median(warm.r!)),
        ratio: ratio(median(warm.g!), median(warm.r!)),
      },
      {
        bench: "warm exec 1+1",
        measure: "p95",
        runs: execRuns,
        bay: ms(p95(warm.g!)),
        direct: ms(p95(warm.r!)),
        ratio: ratio(p95(warm.g!), p95(warm.r!)),
      },
      {
        bench: "memory",
        measure: "container after first exec",
        runs: 1,
        bay: `${(mem.g / MiB).toFixed(1)} MiB`,
        direct: `${(mem.r / MiB).toFixed(1)} MiB`,
        ratio: ratio(mem.g, mem.r),
      },
    ];
    return { rows, lines: [`cold start difference (median): ${cg >= cr ? "+" : ""}${ms(cg - cr)} for ${GVISOR}`] };
  } finally {
    await deleteSandbox(ctx, g);
    await deleteSandbox(ctx, r);
  }
}
