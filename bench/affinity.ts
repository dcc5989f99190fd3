/**
 * CPU affinity of whole processes (every thread, `taskset -a -p`), for the exec
 * bench's round with the client and Bay on one CPU: there a request handed from
 * the client to Bay, and Bay's answer back, is a switch on that CPU rather than
 * a wake-up of the other (idle) CPU, which on a virtual machine costs an
 * inter-processor interrupt and a host scheduling of that vCPU.
 */
import { availableParallelism } from "node:os";

/** Pins each process (all its threads) to `cpus` (a taskset list: "0", "0-1"). */
export async function pin(pids: number[], cpus: string): Promise<void> {
  for (const pid of pids) {
    const p = Bun.spawn(["taskset", "-a", "-p", "-c", cpus, String(pid)], { stdout: "ignore", stderr: "pipe" });
    if ((await p.exited) !== 0) throw new Error(`taskset ${cpus} ${pid}: ${await new Response(p.stderr).text()}`);
  }
}

/** Every CPU of this machine, as a taskset list. */
export const allCpus = (): string => `0-${availableParallelism() - 1}`;

/**
 * Runs `work` with `pids` on CPU 0, then gives them every CPU again. Null without a
 * second CPU (nothing to compare) or without taskset.
 */
export async function onOneCpu<T>(pids: number[], work: () => Promise<T>): Promise<T | null> {
  if (availableParallelism() < 2 || !Bun.which("taskset")) return null;
  await pin(pids, "0");
  try {
    return await work();
  } finally {
    await pin(pids, allCpus());
  }
}
