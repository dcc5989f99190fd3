/**
 * Background commands of the in-memory fake Ship (`background: true`): each runs
 * the fake shell concurrently and can be listed, read and killed, with Ship's
 * item shapes. Killing one aborts its command (a `sleep` ends at once).
 */
import type { Process, ProcessDetail } from "../../../protocol/ship/index.ts";
import { BayError } from "../../errors.ts";
import { runShell, type ShellHost } from "./fake-shell.ts";

/** Background commands running at once, as Ship's SHIP_MAX_BACKGROUND default. */
const MAX_RUNNING = 16;

interface Entry {
  item: Process;
  stdout: string;
  stderr: string;
  abort: AbortController;
  done: Promise<void>;
}

export class FakeProcesses {
  private readonly entries = new Map<string, Entry>();
  private nextPid = 100;

  constructor(
    private readonly host: ShellHost,
    /** Aborts when the container dies: every command ends with it. */
    private readonly alive: AbortSignal,
  ) {}

  start(command: string, cwd: string, env: Record<string, string>): Process {
    const running = [...this.entries.values()].filter((e) => e.item.status === "running").length;
    if (running >= MAX_RUNNING) {
      throw new BayError("quota_exceeded", `too many background processes (max ${MAX_RUNNING})`, {
        details: { limit: MAX_RUNNING, running },
      });
    }
    const abort = new AbortController();
    const item: Process = {
      process_id: `proc-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`,
      pid: this.nextPid++,
      command,
      status: "running",
      exit_code: null,
      started_at: new Date().toISOString(),
      finished_at: null,
    };
    const entry: Entry = { item, stdout: "", stderr: "", abort, done: Promise.resolve() };
    entry.done = runShell(this.host, command, cwd, env, AbortSignal.any([abort.signal, this.alive])).then(
      (r) => {
        entry.stdout = r.stdout;
        entry.stderr = r.stderr;
        this.finish(entry, abort.signal.aborted ? null : r.exitCode);
      },
      () => this.finish(entry, null),
    );
    this.entries.set(item.process_id, entry);
    return { ...item };
  }

  list(): Process[] {
    return [...this.entries.values()].map((e) => ({ ...e.item }));
  }

  get(id: string): ProcessDetail {
    const e = this.require(id);
    return { ...e.item, output: e.stdout, error: e.stderr, truncated: false };
  }

  async kill(id: string): Promise<Process> {
    const e = this.require(id);
    if (e.item.status === "running") {
      e.abort.abort();
      await e.done;
    }
    return { ...e.item };
  }

  private require(id: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw new BayError("not_found", `process not found: ${id}`, { details: { process_id: id } });
    return e;
  }

  /** A killed command has no exit code (it ended by a signal), like Ship's. */
  private finish(e: Entry, exitCode: number | null): void {
    if (e.item.status !== "running") return;
    e.item.status = exitCode === null ? "killed" : "exited";
    e.item.exit_code = exitCode;
    e.item.finished_at = new Date().toISOString();
  }
}
