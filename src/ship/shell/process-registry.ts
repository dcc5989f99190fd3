import { randomBytes } from "node:crypto";
import { ShipError } from "../errors.ts";
import { CappedBuffer, drainInto } from "../output-buffer.ts";
import { killGroup, spawnCommand, type CommandProcess, type CommandSpec } from "./spawn.ts";

/** Public view of a background process. */
export interface ProcessItem {
  process_id: string;
  pid: number;
  command: string;
  status: "running" | "exited" | "killed";
  exit_code: number | null;
  started_at: string;
  finished_at: string | null;
}

/** A process item plus its buffered output. */
export interface ProcessDetail extends ProcessItem {
  output: string;
  error: string;
  truncated: boolean;
}

interface Entry {
  item: ProcessItem;
  proc: CommandProcess;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  killRequested: boolean;
}

/** Finished entries kept for inspection; older ones are pruned. */
const KEEP_FINISHED = 100;

/** Tracks background commands: start, list, inspect, kill; reaps and prunes them. */
export class ProcessRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: { maxRunning: number; maxOutputBytes: number }) {}

  /** Starts a command in the background, or throws quota_exceeded at the cap. */
  start(spec: CommandSpec): ProcessItem {
    const running = [...this.entries.values()].filter((e) => e.item.status === "running").length;
    if (running >= this.opts.maxRunning) {
      throw new ShipError("quota_exceeded", `too many background processes (max ${this.opts.maxRunning})`, {
        details: { limit: this.opts.maxRunning, running },
      });
    }
    const proc = spawnCommand(spec);
    const entry: Entry = {
      item: {
        process_id: `proc-${randomBytes(8).toString("hex")}`,
        pid: proc.pid,
        command: spec.command,
        status: "running",
        exit_code: null,
        started_at: new Date().toISOString(),
        finished_at: null,
      },
      proc,
      stdout: new CappedBuffer(this.opts.maxOutputBytes),
      stderr: new CappedBuffer(this.opts.maxOutputBytes),
      killRequested: false,
    };
    this.entries.set(entry.item.process_id, entry);
    void drainInto(proc.stdout, entry.stdout);
    void drainInto(proc.stderr, entry.stderr);
    // Awaiting `exited` is what reaps the child (no zombie). When the leader exits,
    // whatever it left in its process group (`cmd &`) is killed, like after a
    // foreground exec: an entry that is no longer "running" owns no processes, so
    // nothing can outlive the cap or escape DELETE.
    void proc.exited.then(() => {
      killGroup(proc.pid);
      this.finish(entry);
    });
    return { ...entry.item };
  }

  /** All known processes, oldest first. */
  list(): ProcessItem[] {
    return [...this.entries.values()].map((e) => ({ ...e.item }));
  }

  /** One process with its buffered output, or not_found. */
  get(id: string): ProcessDetail {
    const entry = this.require(id);
    return {
      ...entry.item,
      output: entry.stdout.text(),
      error: entry.stderr.text(),
      truncated: entry.stdout.truncated || entry.stderr.truncated,
    };
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
    entry.item.status = entry.killRequested || entry.proc.signalCode ? "killed" : "exited";
    entry.item.exit_code = entry.proc.exitCode; // null when ended by a signal
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
