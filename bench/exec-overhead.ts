/**
 * The exec hot path: `1+1` through Bay (loopback HTTP → Bay → its Ship) versus
 * the same POST /ipython/exec sent straight to that Ship with the session's
 * secret, interleaved pair by pair on one warm sandbox. Bay's overhead per call
 * is the median (and 99th percentile) of the pairwise differences, so a slow
 * moment of the shared machine lands on both sides of a pair. Bay is measured
 * warm, after WARM_UP_CALLS calls, as a server that has been running is.
 *
 * Beside them, in the same rounds, the same call through a bare Bun proxy
 * (bench/bare-proxy.ts: Bun.serve + fetch, nothing else) to the same Ship: the
 * floor of any extra HTTP hop through a Bun process on this machine, so Bay's
 * own share of its overhead is the difference.
 *
 * With a baseline Bay (another checkout, BENCH_BASELINE_ROOT), its pairs are
 * interleaved with this build's, each on its own sandbox.
 *
 * With a Bay of this build whose calls to Ship are all HTTP (`http`: ship_channel
 * false), its pairs too: what the call channel (src/bay/runtime/ship-channel.ts) saves.
 *
 * With a Bay in connect_mode unix_socket (`socket`), its pairs too (Bay on
 * Ship's socket against a direct call to that socket), and what a client sees:
 * a call through that Bay against one through this build's, same rounds. (Not
 * pair by pair across sandboxes: the other sandbox's kernel has idled a whole
 * pair by then, and waking it inflates whichever call goes there.)
 *
 * Then the same pairs once more for this build with the client (this process),
 * Bay and the bare proxies pinned to one CPU (bench/affinity.ts; Ship is left
 * free): what is left of the overhead when handing a request to Bay, and its
 * answer back, wakes no other CPU. The difference to the first rows is the
 * machine's cost of those two wake-ups, not Bay's work.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { onOneCpu } from "./affinity.ts";
import { bayExec, type BenchContext, createSandbox, deleteSandbox, directExec, expectTwo, shipOf } from "./context.ts";
import { median, ms, quantile, ratio, type Row, timedPair } from "./stats.ts";

interface Side {
  ctx: BenchContext;
  /** Bay's CPU time per call in microseconds, all its threads (measured after the pairs). */
  cpuUs?: number;
  id: string;
  ship: { endpoint: string; secret: string };
  bay: number[];
  direct: number[];
  diff: number[];
  /** The bare proxy's overhead over the direct call, pair by pair (this build's side only). */
  floor: number[];
  /** The same for the bare proxy over a call channel (bench/bare-channel-proxy.ts). */
  channelFloor: number[];
}

/** A bare Bun proxy in front of one Ship (bench/bare-proxy.ts, or bare-channel-proxy.ts), as its own process. */
export async function bareProxy(ship: { endpoint: string; secret: string }, script = "bare-proxy.ts") {
  const proc = Bun.spawn(["bun", join(import.meta.dir, script), ship.endpoint, ship.secret], { stdout: "pipe" });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(new TextDecoder().decode(value).trim());
  if (!port) throw new Error("the bare proxy did not start");
  const call = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: "1+1" }),
    });
    expectTwo((await r.json()) as object, "bare proxy exec");
  };
  return { call, pid: proc.pid, close: () => proc.kill() };
}

/**
 * Calls through Bay before the measured pairs (BENCH_EXEC_WARMUP). JavaScriptCore
 * keeps compiling Bay's hot path to its top tier for the first ~10,000 calls
 * (its JIT threads took a tenth of Bay's CPU after 1,500 and settled only past
 * 20,000, read from /proc per thread), so fewer measure a server still warming up.
 */
/** Calls over which Bay's CPU per call is measured. */
const CPU_CALLS = 2000;

const WARM_UP_CALLS = Number(process.env.BENCH_EXEC_WARMUP ?? 20_000);

async function prepare(ctx: BenchContext): Promise<Side> {
  const { id } = await createSandbox(ctx);
  await bayExec(ctx, id); // starts the session
  const ship = await shipOf(ctx, id);
  // A running Bay has served many calls: JavaScriptCore compiles a hot path to
  // its top tier only after thousands of them.
  for (let i = 0; i < WARM_UP_CALLS; i++) await bayExec(ctx, id);
  for (let i = 0; i < 20; i++) await directExec(ship);
  return { ctx, id, ship, bay: [], direct: [], diff: [], floor: [], channelFloor: [] };
}

/** One pair: Bay then direct, or direct then Bay; with the proxies, each one's call and a direct one likewise. */
async function pair(s: Side, bayFirst: boolean, proxies?: { http: () => Promise<void>; channel: () => Promise<void> }): Promise<void> {
  const [b, d] = await timedPair(
    () => bayExec(s.ctx, s.id),
    () => directExec(s.ship),
    bayFirst,
  );
  s.bay.push(b);
  s.direct.push(d);
  s.diff.push(b - d);
  if (!proxies) return;
  const [p, d2] = await timedPair(proxies.http, () => directExec(s.ship), bayFirst);
  s.floor.push(p - d2);
  const [q, d3] = await timedPair(proxies.channel, () => directExec(s.ship), bayFirst);
  s.channelFloor.push(q - d3);
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
    ...(s.cpuUs !== undefined
      ? [
          {
            bench: `warm exec 1+1${label}`,
            measure: "Bay's CPU per call, all its threads (2,000 calls)",
            runs: CPU_CALLS,
            bay: `${(s.cpuUs / 1000).toFixed(3)} ms`,
            direct: "-",
            ratio: "-",
          },
        ]
      : []),
    ...(s.floor.length
      ? [
          {
            bench: `warm exec 1+1${label}`,
            measure: "a bare Bun proxy's overhead (the floor of a hop), p50 / p99",
            runs,
            bay: `${ms(median(s.floor))} / ${ms(quantile(s.floor, 0.99))}`,
            direct: "-",
            ratio: "-",
          },
          {
            bench: `warm exec 1+1${label}`,
            measure: "the same bare proxy over a call channel, p50 / p99",
            runs,
            bay: `${ms(median(s.channelFloor))} / ${ms(quantile(s.channelFloor, 0.99))}`,
            direct: "-",
            ratio: "-",
          },
        ]
      : []),
  ];
}

/** CPU time a process's threads have run, in nanoseconds (the scheduler's own count, /proc/<pid>/task/<tid>/schedstat). */
function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended
    }
  }
  return total;
}

/** Bay's CPU per exec: `calls` sequential calls through it, the CPU its threads ran meanwhile divided by the calls. */
async function cpuPerCall(s: Side, calls: number): Promise<void> {
  const before = cpuNs(s.ctx.bay.pid);
  for (let i = 0; i < calls; i++) await bayExec(s.ctx, s.id);
  s.cpuUs = (cpuNs(s.ctx.bay.pid) - before) / 1000 / calls;
}

/** What a client sees: a call through a Bay on Ship's socket against one through a Bay on a published port. */
function viaSocket(socket: Side, port: Side, runs: number): Row {
  return {
    bench: "warm exec 1+1 through Bay",
    measure: "on Ship's socket vs on a published port, p50 (same rounds)",
    runs,
    bay: ms(median(socket.bay)),
    direct: ms(median(port.bay)),
    ratio: ratio(median(socket.bay), median(port.bay)),
  };
}

export async function execOverhead(
  ctx: BenchContext,
  runs: number,
  others: { baseline?: BenchContext; socket?: BenchContext; http?: BenchContext } = {},
): Promise<Row[]> {
  const { baseline, socket, http } = others;
  const sides: Side[] = [];
  let proxy: Awaited<ReturnType<typeof bareProxy>> | undefined;
  let channelProxy: Awaited<ReturnType<typeof bareProxy>> | undefined;
  let socketSide: Side | undefined;
  let httpSide: Side | undefined;
  try {
    sides.push(await prepare(ctx));
    if (baseline) sides.push(await prepare(baseline));
    if (socket) {
      socketSide = await prepare(socket);
      sides.push(socketSide);
    }
    if (http) {
      httpSide = await prepare(http);
      sides.push(httpSide);
    }
    proxy = await bareProxy(sides[0]!.ship);
    channelProxy = await bareProxy(sides[0]!.ship, "bare-channel-proxy.ts");
    // Warmed as Bay is: a JIT still compiling would count against the floors.
    for (let i = 0; i < WARM_UP_CALLS; i++) await proxy.call();
    for (let i = 0; i < WARM_UP_CALLS; i++) await channelProxy.call();
    const proxies = { http: proxy.call, channel: channelProxy.call };
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) await pair(s, i % 4 < 2, s === sides[0] ? proxies : undefined);
    }
    for (const s of sides) await cpuPerCall(s, CPU_CALLS);
    const [mine] = sides;
    const pinned = await onOneCpu([process.pid, mine!.ctx.bay.pid, proxy.pid, channelProxy.pid], async () => {
      const s: Side = { ...mine!, bay: [], direct: [], diff: [], floor: [], channelFloor: [] };
      delete s.cpuUs;
      for (let i = 0; i < runs; i++) await pair(s, i % 4 < 2, proxies);
      return s;
    });
    const base = baseline ? sides[1] : undefined;
    return [
      ...rows(mine!, runs, baseline ? " (this build)" : ""),
      ...(base ? rows(base, runs, " (baseline)") : []),
      ...(socketSide ? [...rows(socketSide, runs, " (Ship's socket)"), viaSocket(socketSide, mine!, runs)] : []),
      ...(httpSide ? rows(httpSide, runs, " (HTTP per call, no channel)") : []),
      ...(pinned ? rows(pinned, runs, " (client and Bay on one CPU)") : []),
    ];
  } finally {
    proxy?.close();
    channelProxy?.close();
    for (const s of sides) await deleteSandbox(s.ctx, s.id);
  }
}
