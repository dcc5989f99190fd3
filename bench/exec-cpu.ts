/**
 * Bay's CPU per exec, the number Bay's code controls (issue 14's exec overhead is
 * mostly the machine's hop; see README, Benchmarks). Not part of `bun run bench`:
 *
 *   bun run bench/exec-cpu.ts
 *
 * 1. Served: a Bay subprocess (the bench's: API key, access log on) and a bare Bun
 *    proxy over a call channel (bench/bare-channel-proxy.ts) in front of the same
 *    warm Ship, each warmed by BENCH_EXEC_WARMUP calls; then the CPU each process's
 *    main thread and all its threads ran per `1+1`, from the scheduler's own count
 *    (/proc/<pid>/task/<tid>/schedstat), in alternating blocks.
 * 2. In process: a Bay built in this process whose Ship channel answers each call at
 *    once (its socket's send replaced by a canned answer: no Ship, no hop, nothing but
 *    Bay's code from the Request to the relayed Response), timed per call with its
 *    caches warm, and with 16 MiB written between calls (caches cold, as a served Bay
 *    finds them after the client, Ship and the kernel ran).
 */
import { readdirSync, readFileSync } from "node:fs";
import Docker from "dockerode";
import { encodeAnswer, parseChannelFrame } from "../src/protocol/ship/channel.ts";
import { bayExec, createSandbox, deleteSandbox, shipOf, startBench } from "./context.ts";
import { inProcessBay } from "./exec-in-process.ts";
import { bareProxy } from "./exec-overhead.ts";

const WARM_UP = Number(process.env.BENCH_EXEC_WARMUP ?? 20_000);
const BLOCK = 2000;
const BLOCKS = 3;

/** CPU a process's threads ran, in ns: the main thread's and all of them. */
function cpu(pid: number): { main: number; all: number } {
  let main = 0;
  let all = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      all += ns;
      if (tid === String(pid)) main = ns;
    } catch {
      // the thread ended
    }
  }
  return { main, all };
}

/** Microseconds of CPU per call of `call`, over BLOCK calls. */
async function perCall(pid: number, call: () => Promise<void>): Promise<{ main: number; all: number }> {
  const a = cpu(pid);
  for (let i = 0; i < BLOCK; i++) await call();
  const b = cpu(pid);
  return { main: (b.main - a.main) / 1000 / BLOCK, all: (b.all - a.all) / 1000 / BLOCK };
}

async function served(): Promise<void> {
  const ctx = await startBench(new Docker(), { "bay.bench": "exec-cpu" }, 1, 0);
  const { id } = await createSandbox(ctx);
  let proxy: Awaited<ReturnType<typeof bareProxy>> | undefined;
  try {
    await bayExec(ctx, id);
    proxy = await bareProxy(await shipOf(ctx, id), "bare-channel-proxy.ts");
    const bare = proxy.call;
    const bay = () => bayExec(ctx, id);
    for (let i = 0; i < WARM_UP; i++) await bay();
    for (let i = 0; i < WARM_UP; i++) await bare();
    for (let b = 0; b < BLOCKS; b++) {
      const x = await perCall(ctx.bay.pid, bay);
      const y = await perCall(proxy.pid, bare);
      console.log(
        `served, block ${b + 1}: CPU per exec, main thread / all threads: Bay ${x.main.toFixed(1)} / ${x.all.toFixed(1)} us, bare channel proxy ${y.main.toFixed(1)} / ${y.all.toFixed(1)} us (Bay - bare: ${(x.main - y.main).toFixed(1)} us on the main thread)`,
      );
    }
  } finally {
    proxy?.close();
    await deleteSandbox(ctx, id);
    await ctx.close();
  }
}

async function inProcess(): Promise<void> {
  const { t, exec } = await inProcessBay();
  try {
    for (let i = 0; i < 50; i++) await exec(); // starts the session; the channel opens
    // Reaches into the Ship client's channel (private fields): the bench fails loudly if they move.
    const channels = (t.bay.deps.router as any).deps?.ship?.channels;
    const channel = channels?.open instanceof Map ? [...channels.open.values()][0] : undefined;
    if (!channel?.ws || typeof channel.answer !== "function") throw new Error("no open call channel to answer from");
    const answer = JSON.stringify({ success: true, output: "2", error: null, execution_count: 1, images: [], display: [] });
    channel.ws.send = (frame: string) => {
      const call = parseChannelFrame(frame);
      if (call && "id" in call) {
        queueMicrotask(() => channel.answer(encodeAnswer({ id: call.id, status: 200, type: "application/json", body: answer })));
      }
    };
    const junk = new Uint8Array(16 * 1024 * 1024);
    const timed = async (cold: boolean) => {
      let spent = 0;
      for (let i = 0; i < BLOCK * 5; i++) {
        if (cold) for (let k = 0; k < junk.length; k += 64) junk[k] = (junk[k]! + 1) & 255;
        const t0 = performance.now();
        await exec();
        spent += performance.now() - t0;
      }
      return ((spent * 1000) / (BLOCK * 5)).toFixed(1);
    };
    for (let i = 0; i < WARM_UP; i++) await exec();
    for (let b = 0; b < BLOCKS; b++) {
      console.log(
        `in process, block ${b + 1}: Bay's code per exec, caches warm ${await timed(false)} us, caches cold ${await timed(true)} us`,
      );
    }
  } finally {
    await t.close();
  }
}

await served();
await inProcess();
