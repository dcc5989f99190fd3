/**
 * `bun run bench`: side-by-side benchmarks of Bay against going to Docker/Ship
 * (or a bare Bun.serve) directly, in one run on this machine. Absolute times on
 * a shared machine are noisy; the ratios are what to compare between runs, and
 * the machine's load average is printed with them. Loopback traffic only;
 * everything created is removed at the end (also on failure).
 *
 *   BENCH_RUNS        runs per cold-start/transfer side (default 10, minimum 10)
 *   BENCH_EXEC_RUNS   pairs for the exec overhead (default 200)
 *   BENCH_EXEC_WARMUP calls through each Bay before the exec pairs (default 20000)
 *   BENCH_EXEC_SOCKET 0: no connect_mode unix_socket Bay beside the exec rows
 *   BENCH_EXEC_HTTP   0: no Bay without the call channel (every Ship call HTTP) beside the exec rows
 *   BENCH_POOL        warm-pool size for the pool benches (default 20)
 *   BENCH_ONLY        comma-separated groups to run (default all): pool, cold,
 *                     exec, control, transfer, memory, load, contexts, terminal, observability, runtimes,
 *                     e2b (the E2B SDK's create → first runCode against Bay's own create → first exec),
 *                     watch (exec calls while the sandbox's own code storms a watched directory with renames)
 *   BENCH_STORM_SECONDS  seconds of each rename storm in the watch group (default 15)
 *   BENCH_BASELINE_ROOT  another checkout whose Bay runs beside this one in the exec, control-plane
 *                        and access-log benches (a before / after)
 *   BENCH_BASELINE_ENV   JSON of environment for the baseline Bay (e.g. {"BAY_LOG_LEVEL":"warn"}:
 *                        the same checkout as its own baseline with one setting changed)
 *   BENCH_RUNTIME_RUNS   cold starts per side for gVisor vs runc (default BENCH_RUNS)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { docker, removeLabelledQuietly, requireShipImages } from "../tests/e2e/support/e2e.ts";
import { coldLoad } from "./cold-load.ts";
import { coldStart } from "./cold-start.ts";
import { e2bCreateToFirstResult } from "./e2b.ts";
import { loadAverage, startBench } from "./context.ts";
import { type ContextsBench, contextsBench } from "./contexts.ts";
import { controlPlane } from "./control-plane.ts";
import { execInProcess } from "./exec-in-process.ts";
import { execOverhead } from "./exec-overhead.ts";
import { bayMemory, rssAfter } from "./memory.ts";
import { accessLogCost, accessLogCpu, scrapeCost } from "./observability.ts";
import { concurrentPoolCreates, poolHitFirstExec, untilWarm } from "./pool.ts";
import { runtimes } from "./runtimes.ts";
import { printTable, type Row } from "./stats.ts";
import { terminalRoundTrip } from "./terminal.ts";
import { transfer } from "./transfer.ts";
import { watchStorm } from "./watch-storm.ts";
import { workspaceTransfer } from "./workspace-transfer.ts";

const GROUPS = [
  "pool",
  "cold",
  "exec",
  "control",
  "transfer",
  "memory",
  "load",
  "contexts",
  "terminal",
  "observability",
  "runtimes",
  "e2b",
  "watch",
] as const;
type Group = (typeof GROUPS)[number];

const runs = Math.max(10, Number(process.env.BENCH_RUNS ?? 10));
const execRuns = Math.max(20, Number(process.env.BENCH_EXEC_RUNS ?? 200));
const poolSize = Math.max(1, Number(process.env.BENCH_POOL ?? 20));
const runtimeRuns = Math.max(3, Number(process.env.BENCH_RUNTIME_RUNS ?? runs));
const only = (process.env.BENCH_ONLY ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = only.filter((g) => !(GROUPS as readonly string[]).includes(g));
if (unknown.length) {
  console.error(`BENCH_ONLY: unknown group(s) ${unknown.join(", ")} (known: ${GROUPS.join(", ")})`);
  process.exit(2);
}
const enabled = (g: Group) => only.length === 0 || only.includes(g);

await requireShipImages();
const benchLabel = { "bay.bench.run": `bench-${crypto.randomUUID().slice(0, 8)}` };
const ctx = await startBench(docker, benchLabel, runs, enabled("pool") ? poolSize : 0);
// A Bay from another checkout beside this one for the exec and control-plane rows (a before / after).
const baselineRoot = process.env.BENCH_BASELINE_ROOT;
const baselineEnv = JSON.parse(process.env.BENCH_BASELINE_ENV ?? "{}") as Record<string, string>;
const baseline =
  baselineRoot && (enabled("exec") || enabled("control"))
    ? await startBench(docker, benchLabel, runs, 0, baselineEnv, baselineRoot)
    : undefined;
const rows: Row[] = [];
const lines: string[] = [];
let failed = false;
try {
  console.log(
    `Bay subprocess at ${ctx.bay.url} (pid ${ctx.bay.pid}), API-key auth, access log on; ${runs} runs per side, ` +
      `${execRuns} exec pairs, warm pool ${enabled("pool") ? poolSize : 0}; load average ${await loadAverage()} on ${navigator.hardwareConcurrency} cores\n`,
  );
  if (enabled("pool")) {
    rows.push(...(await poolHitFirstExec(ctx, runs)));
    rows.push(...(await concurrentPoolCreates(ctx, poolSize)));
    // The refill of the pool must not run under the benches that follow.
    await untilWarm(ctx, poolSize);
  }
  if (enabled("cold")) rows.push(...(await coldStart(ctx)));
  if (enabled("exec")) {
    // The same build in connect_mode unix_socket beside it (BENCH_EXEC_SOCKET=0: not).
    const socketDir = mkdtempSync(join(tmpdir(), "bay-bench-sockets-"));
    const socket =
      process.env.BENCH_EXEC_SOCKET === "0"
        ? undefined
        : await startBench(docker, benchLabel, runs, 0, { BAY_CONNECT_MODE: "unix_socket", BAY_SOCKET_DIR: join(socketDir, "ships") });
    // And with every call to Ship over HTTP (BENCH_EXEC_HTTP=0: not): what the call channel saves.
    const http =
      process.env.BENCH_EXEC_HTTP === "0" ? undefined : await startBench(docker, benchLabel, runs, 0, { BAY_SHIP_CHANNEL: "false" });
    try {
      rows.push(...(await execOverhead(ctx, execRuns, { baseline, socket, http })));
      rows.push(...(await execInProcess(execRuns)));
    } finally {
      await socket?.close();
      await http?.close();
      rmSync(socketDir, { recursive: true, force: true });
    }
  }
  if (enabled("control")) rows.push(...(await controlPlane(ctx, 3, 3, baseline)));
  if (enabled("memory")) {
    const fresh = await startBench(docker, benchLabel, runs, 0);
    const freshBase = baselineRoot ? await startBench(docker, benchLabel, runs, 0, baselineEnv, baselineRoot) : undefined;
    try {
      rows.push(...(await bayMemory(fresh, freshBase)));
    } finally {
      await fresh.close();
      await freshBase?.close();
    }
  }
  if (enabled("transfer")) {
    rows.push(...(await transfer(ctx)));
    rows.push(...(await workspaceTransfer(ctx)));
  }
  if (enabled("load")) {
    const load = await coldLoad(ctx);
    rows.push(...load.rows);
    lines.push(...load.lines);
  }
  let contexts: ContextsBench | undefined;
  if (enabled("contexts")) {
    contexts = await contextsBench(ctx, Math.min(execRuns, 100));
    rows.push(...contexts.viaBay);
  }
  if (enabled("terminal")) rows.push(...(await terminalRoundTrip(ctx, Math.min(execRuns, 100))));
  const storms = enabled("watch") ? await watchStorm(ctx) : [];
  if (enabled("observability")) {
    rows.push(...(await accessLogCost(Math.min(execRuns, 100))));
    rows.push(...(await accessLogCpu(30)));
    rows.push(...(await scrapeCost(50)));
  }
  if (enabled("memory")) rows.push(await rssAfter(ctx));
  printTable(rows);
  for (const line of lines) console.log(line);
  if (contexts) {
    console.log("");
    printTable(contexts.languages, { bay: "javascript", direct: "python", ratio: "js/python" });
    console.log("");
    printTable(contexts.streaming, { bay: "streamed", direct: "JSON", ratio: "streamed/JSON" });
    console.log("");
    for (const line of contexts.memory) console.log(line);
  }
  if (storms.length) {
    console.log("");
    printTable(storms, { bay: "during the storm", direct: "no storm", ratio: "storm/none" });
  }
  if (enabled("runtimes")) {
    console.log(`\ngVisor (python-gvisor, runtime runsc) vs runc (python-cold), both through Bay; ${runtimeRuns} cold starts per side\n`);
    const rt = await runtimes({ ...ctx, runs: runtimeRuns }, Math.min(execRuns, 100));
    printTable(rt.rows, { bay: "gVisor", direct: "runc", ratio: "gVisor/runc" });
    for (const line of rt.lines) console.log(line);
  }
  if (enabled("e2b")) {
    console.log("\nE2B SDK (@e2b/code-interpreter) vs Bay's own API on one Bay, both cold (no warm pool)\n");
    printTable(await e2bCreateToFirstResult(runs), { bay: "E2B SDK", direct: "Bay API", ratio: "E2B/Bay" });
  }
  console.log(`\nload average at the end: ${await loadAverage()}`);
} catch (e) {
  failed = true;
  if (rows.length) printTable(rows);
  console.error("benchmark failed:", e);
} finally {
  await ctx.close();
  await baseline?.close();
  await removeLabelledQuietly(benchLabel);
}
process.exit(failed ? 1 : 0);
