/**
 * `bun run bench`: side-by-side benchmarks of Bay against going to Docker/Ship
 * directly, in one run on this machine, then the python-gvisor profile against
 * python-default (runc), both through Bay. Absolute times on a shared machine are
 * noisy; the ratios are what to compare between runs. Loopback traffic only;
 * everything created is removed at the end (also on failure).
 *
 *   BENCH_RUNS   runs per cold-start/transfer side (default 10, minimum 10)
 *   BENCH_EXEC_RUNS  runs per warm-exec side (default 100)
 *   BENCH_BASELINE_ROOT  another checkout whose Bay runs beside this one in the access-log bench
 *   BENCH_ONLY=observability  only the observability benches (access log cost, /metrics scrape)
 *   BENCH_ONLY=contexts       only the code contexts and streamed exec benches
 *   BENCH_ONLY=terminal       only the terminal keystroke round trip
 *   BENCH_RUNTIME_RUNS  cold starts per side for gVisor vs runc (default BENCH_RUNS)
 */
import { docker, removeLabelledQuietly, requireShipImages, spawnBay } from "../tests/e2e/support/e2e.ts";
import { coldStart } from "./cold-start.ts";
import type { BenchContext } from "./context.ts";
import { type ContextsBench, contextsBench } from "./contexts.ts";
import { memory } from "./memory.ts";
import { accessLogCost, accessLogCpu, scrapeCost } from "./observability.ts";
import { runtimes } from "./runtimes.ts";
import { printTable, type Row } from "./stats.ts";
import { terminalRoundTrip } from "./terminal.ts";
import { transfer } from "./transfer.ts";
import { warmExec } from "./warm-exec.ts";
import { workspaceTransfer } from "./workspace-transfer.ts";

const runs = Math.max(10, Number(process.env.BENCH_RUNS ?? 10));
const execRuns = Math.max(10, Number(process.env.BENCH_EXEC_RUNS ?? 100));
const runtimeRuns = Math.max(3, Number(process.env.BENCH_RUNTIME_RUNS ?? runs));

await requireShipImages();
const benchLabel = { "bay.bench.run": `bench-${crypto.randomUUID().slice(0, 8)}` };
const bay = await spawnBay();
const ctx: BenchContext = { bay, docker, benchLabel, runs, owner: "bench" };
const rows: Row[] = [];
let failed = false;
try {
  console.log(`Bay subprocess at ${bay.url} (pid ${bay.pid}); ${runs} runs per side, ${execRuns} for warm exec\n`);
  const only = process.env.BENCH_ONLY;
  const all = only === undefined || only === "";
  if (all) {
    rows.push(...(await coldStart(ctx)));
    rows.push(...(await warmExec(ctx, execRuns)));
  }
  if (all || only === "terminal") rows.push(...(await terminalRoundTrip(ctx, execRuns)));
  if (all) {
    rows.push(...(await transfer(ctx)));
    rows.push(...(await workspaceTransfer(ctx)));
  }
  let contexts: ContextsBench | undefined;
  if (all || only === "contexts") {
    contexts = await contextsBench(ctx, execRuns);
    rows.push(...contexts.viaBay);
  }
  if (all || only === "observability") {
    rows.push(...(await accessLogCost(execRuns)));
    rows.push(...(await accessLogCpu(30)));
    rows.push(...(await scrapeCost(Math.max(20, Math.floor(execRuns / 2)))));
  }
  printTable(rows);
  console.log("");
  if (contexts) {
    printTable(contexts.languages, { bay: "javascript", direct: "python", ratio: "js/python" });
    console.log("");
    printTable(contexts.streaming, { bay: "streamed", direct: "JSON", ratio: "streamed/JSON" });
    console.log("");
    for (const line of contexts.memory) console.log(line);
    console.log("");
  }
  if (all) {
    for (const line of await memory(ctx)) console.log(line);
    console.log(
      `\ngVisor (python-gvisor, runtime runsc) vs runc (python-default), both through Bay; ${runtimeRuns} cold starts per side\n`,
    );
    const rt = await runtimes({ ...ctx, runs: runtimeRuns }, execRuns);
    printTable(rt.rows, { bay: "gVisor", direct: "runc", ratio: "gVisor/runc" });
    for (const line of rt.lines) console.log(line);
  }
} catch (e) {
  failed = true;
  console.error("benchmark failed:", e);
} finally {
  await bay.close();
  await removeLabelledQuietly(benchLabel);
}
process.exit(failed ? 1 : 0);
