import { randomBytes } from "node:crypto";
import type { FileSink } from "bun";
import { ShipError } from "../errors.ts";
import { chunksOf } from "../streams.ts";
import { OutputRing, type OutputStream } from "./output-ring.ts";
import { killGroup, signalName, spawnCommand, type CommandProcess, type CommandSpec } from "./spawn.ts";

/** Public view of a background process. */
export interface ProcessItem {
  process_id: string;
  pid: number;
  command: string;
  status: "running" | "exited" | "killed";
  exit_code: number | null;
  /** The signal that ended it (`SIGKILL`, …), null when it exited on its own. */
  signal: string | null;
  /** Whether its stdin is a pipe a client may write to (`stdin: true` at start) and still open. */
  stdin_open: boolean;
  started_at: string;
  finished_at: string | null;
}

/** A process item plus the output its ring still holds. */
export interface ProcessDetail extends ProcessItem {
  output: string;
  error: string;
  truncated: boolean;
}

/** Signals a client may send to a background process group. */
export const PROCESS_SIGNALS = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGCONT", "SIGSTOP"] as const;
export type ProcessSignal = (typeof PROCESS_SIGNALS)[number];

interface Entry {
  item: ProcessItem;
  proc: CommandProcess;
  ring: OutputRing;
  stdin: FileSink | null;
  /** A stdin write still waiting for the process to read it. */
  writing: boolean;
  killRequested: boolean;
}

/** What a reader of one process's output gets: its live item and its ring. */
export interface ProcessOutput {
  item: () => ProcessItem;
  ring: OutputRing;
}

/** Finished entries kept for inspection; older ones are pruned. */
const KEEP_FINISHED = 100;
/** How long to keep reading after the process exits, for output still in the pipes. */
const PIPE_GRACE_MS = 250;

export interface ProcessRegistryOptions {
  maxRunning: number;
  /** Bytes of output (stdout and stderr together) each process keeps for late readers. */
  maxOutputBytes: number;
}

/**
 * Background commands: start, list, inspect, read output from an offset, write
 * stdin, signal, kill; reaps and prunes them. A process belongs to Ship, not to
 * a request: a client that disconnects loses nothing, and may reattach and read
 * on from its last offset while the ring still holds it.
 */
export class ProcessRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: ProcessRegistryOptions) {}

  /**
   * Starts a command in the background, or throws quota_exceeded at the cap.
   * `lifetimeMs`: its group is killed that long after the start (unless it ended first).
   */
  start(spec: CommandSpec & { stdin?: boolean; lifetimeMs?: number }): ProcessItem {
    const running = [...this.entries.values()].filter((e) => e.item.status === "running").length;
    if (running >= this.opts.maxRunning) {
      throw new ShipError("quota_exceeded", `too many background processes (max ${this.opts.maxRunning})`, {
        details: { limit: this.opts.maxRunning, running },
      });
    }
    const proc = spawnCommand(spec, { stdin: spec.stdin ? "pipe" : "ignore" });
    const entry: Entry = {
      item: {
        process_id: `proc-${randomBytes(8).toString("hex")}`,
        pid: proc.pid,
        command: spec.command,
        status: "running",
        exit_code: null,
        signal: null,
        stdin_open: spec.stdin === true,
        started_at: new Date().toISOString(),
        finished_at: null,
      },
      proc,
      ring: new OutputRing(this.opts.maxOutputBytes),
      stdin: spec.stdin ? (proc.stdin as FileSink) : null,
      writing: false,
      killRequested: false,
    };
    this.entries.set(entry.item.process_id, entry);
    const stopReading = new AbortController();
    const drained = Promise.all([
      pump(proc.stdout, "stdout", entry.ring, stopReading.signal),
      pump(proc.stderr, "stderr", entry.ring, stopReading.signal),
    ]);
    // Its lifetime (an E2B command's deadline): the group is killed then, followed or not.
    const lifetime =
      spec.lifetimeMs === undefined
        ? undefined
        : setTimeout(() => {
            if (entry.item.status !== "running") return;
            entry.killRequested = true;
            killGroup(proc.pid);
          }, spec.lifetimeMs);
    lifetime?.unref?.();
    // Awaiting `exited` is what reaps the child (no zombie). When the leader exits,
    // whatever it left in its process group (`cmd &`) is killed, like after a
    // foreground exec: an entry that is no longer "running" owns no processes, so
    // nothing can outlive the cap or escape DELETE. Output still in the pipes is
    // read for a short grace, then the ring is closed (followers get `exit`).
    void proc.exited.then(async () => {
      clearTimeout(lifetime);
      killGroup(proc.pid);
      this.finish(entry);
      const grace = setTimeout(() => stopReading.abort(), PIPE_GRACE_MS);
      await drained;
      clearTimeout(grace);
      entry.ring.close();
    });
    return { ...entry.item };
  }

  /** All known processes, oldest first. */
  list(): ProcessItem[] {
    return [...this.entries.values()].map((e) => ({ ...e.item }));
  }

  /** One process with the output its ring holds, or not_found. */
  get(id: string): ProcessDetail {
    const entry = this.require(id);
    return {
      ...entry.item,
      output: Buffer.from(entry.ring.streamBytes("stdout")).toString("utf8"),
      error: Buffer.from(entry.ring.streamBytes("stderr")).toString("utf8"),
      truncated: entry.ring.dropped > 0,
    };
  }

  /** The process's output ring and live item, for readers. */
  output(id: string): ProcessOutput {
    const entry = this.require(id);
    return { item: () => ({ ...entry.item }), ring: entry.ring };
  }

  /**
   * Writes to the process's stdin and waits until the process (or its pipe) has
   * taken it all; what the pipe cannot hold waits in memory, bounded by one write
   * at a time. `eof` closes stdin afterwards. A write that is not taken within
   * `timeoutMs` answers `timeout`; its bytes stay queued and the next write is
   * refused until they are taken.
   */
  async writeStdin(id: string, data: Uint8Array, eof: boolean, timeoutMs: number): Promise<ProcessItem & { written: number }> {
    const entry = this.require(id);
    const sink = entry.stdin;
    if (!sink || !entry.item.stdin_open || entry.item.status !== "running") {
      throw new ShipError("conflict", `stdin of ${id} is not open`, {
        details: { process_id: id, reason: entry.item.status === "running" && entry.stdin === null ? "no_stdin" : "stdin_closed" },
      });
    }
    if (entry.writing) {
      throw new ShipError("conflict", `an earlier stdin write to ${id} is still waiting for the process to read it`, {
        details: { process_id: id, reason: "stdin_busy" },
      });
    }
    entry.writing = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const flushed = (async () => {
        if (data.byteLength > 0) {
          await sink.write(data);
          await sink.flush();
        }
        if (eof) {
          entry.item.stdin_open = false;
          await sink.end();
        }
      })();
      const outcome = await Promise.race([
        // A pipe the process closed (EPIPE) while it runs on: its stdin is closed, not Ship broken.
        flushed.then(
          () => "done" as const,
          () => "broken" as const,
        ),
        entry.proc.exited.then(() => "exited" as const),
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), timeoutMs);
        }),
      ]);
      if (outcome === "timeout") {
        // The bytes stay queued in the sink; `writing` stays set until they are taken.
        // If the process dies first they fail (EPIPE): it exited, which its status says.
        // Should the process close its stdin instead (EPIPE), stdin is closed, as for a write that meets it at once.
        void flushed
          .catch(() => {
            entry.item.stdin_open = false;
            return endQuietly(sink);
          })
          .finally(() => {
            entry.writing = false;
          });
        throw new ShipError("timeout", `the process did not read its stdin within ${timeoutMs / 1000}s`, {
          details: { timeout: timeoutMs / 1000 },
        });
      }
      if (outcome === "broken") {
        entry.item.stdin_open = false;
        // Ship's end of the pipe too: nothing can be written to it again.
        await endQuietly(sink);
        throw new ShipError("conflict", `process ${id} closed its stdin`, { details: { process_id: id, reason: "stdin_closed" } });
      }
      if (outcome === "exited") {
        throw new ShipError("conflict", `process ${id} exited before it read its stdin`, {
          details: { process_id: id, reason: "stdin_closed" },
        });
      }
      entry.writing = false;
      return { ...entry.item, written: data.byteLength };
    } catch (e) {
      if (!(e instanceof ShipError && e.code === "timeout")) entry.writing = false;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to the process group. A finished process is returned unchanged (its group id may be reused). */
  signal(id: string, signal: ProcessSignal): ProcessItem {
    const entry = this.require(id);
    if (entry.item.status === "running") {
      if (signal === "SIGKILL") entry.killRequested = true;
      killGroup(entry.proc.pid, signal);
    }
    return { ...entry.item };
  }

  /**
   * Kills the process group and waits for the leader to be reaped. A finished entry's
   * group was already killed when its leader exited (and its id may since be reused),
   * so it is not signalled again.
   */
  async kill(id: string): Promise<ProcessItem> {
    const entry = this.require(id);
    if (entry.item.status === "running") {
      entry.killRequested = true;
      killGroup(entry.proc.pid);
      await entry.proc.exited;
      this.finish(entry);
    }
    return { ...entry.item };
  }

  /** Kills every running process (Ship shutdown). */
  killAll(): void {
    for (const entry of this.entries.values()) {
      if (entry.item.status === "running") killGroup(entry.proc.pid);
    }
  }

  private require(id: string): Entry {
    const entry = this.entries.get(id);
    if (!entry) throw new ShipError("not_found", `process not found: ${id}`, { details: { process_id: id } });
    return entry;
  }

  private finish(entry: Entry): void {
    if (entry.item.status !== "running") return;
    const signal = signalName(entry.proc.signalCode);
    entry.item.status = entry.killRequested || signal ? "killed" : "exited";
    entry.item.exit_code = entry.proc.exitCode; // null when ended by a signal
    entry.item.signal = signal;
    entry.item.stdin_open = false;
    entry.item.finished_at = new Date().toISOString();
    this.prune();
  }

  private prune(): void {
    const finished = [...this.entries.values()].filter((e) => e.item.status !== "running");
    for (const entry of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) {
      this.entries.delete(entry.item.process_id);
    }
  }
}

/**
 * Reads a pipe to its end into the ring. Reading never pauses, so a process
 * writing gigabytes never blocks on a full pipe; the ring keeps the newest bytes.
 */
async function pump(stream: ReadableStream<Uint8Array>, name: OutputStream, ring: OutputRing, stop: AbortSignal): Promise<void> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const onAbort = () => void reader?.cancel().catch(() => {});
  stop.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of chunksOf(stream, (r) => {
      reader = r;
    })) {
      ring.push(name, chunk);
    }
  } catch {
    // Cancelled or broken pipe: what was read is kept.
  } finally {
    stop.removeEventListener("abort", onAbort);
  }
}

/** Closes Ship's end of a stdin whose reader is gone; a sink that fails to end (EPIPE again) is closed all the same. */
const endQuietly = (sink: { end(): unknown }): Promise<void> =>
  Promise.resolve()
    .then(() => sink.end())
    .then(
      () => {},
      () => {},
    );
