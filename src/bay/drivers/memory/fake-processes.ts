/**
 * Background commands of the in-memory fake Ship (`background: true`): each runs
 * the fake shell concurrently and can be listed, read (from an offset, or
 * followed), written to, signalled and killed, with Ship's item shapes. The fake
 * shell hands a command's output over when it ends, so output appears then
 * (stdout before stderr), except for `cat` started with `stdin: true`, which
 * echoes each write at once and ends at EOF: enough to follow, write and reattach
 * in tests. Any terminating signal ends a command (the fake has no `trap`); it
 * cannot stop and continue one (SIGSTOP and SIGCONT are refused, naming the fake).
 */
import type { OutputChunk, Process, ProcessDetail, ProcessOutput, ProcessSignalRequest } from "../../../protocol/ship/index.ts";
import { BayError } from "../../errors.ts";
import { runShell, type ShellHost } from "./fake-shell.ts";

/** Background commands running at once, as Ship's SHIP_MAX_BACKGROUND default. */
const MAX_RUNNING = 16;
/** Output kept per process, as Ship's SHIP_MAX_OUTPUT_BYTES default. */
const MAX_OUTPUT = 1024 * 1024;

type Stream = "stdout" | "stderr";

/** A process's output: one offset sequence for both streams, the newest MAX_OUTPUT bytes kept. */
class OutputLog {
  private chunks: Array<{ stream: Stream; offset: number; bytes: Uint8Array }> = [];
  first = 0;
  end = 0;
  closed = false;
  private waiters = new Set<() => void>();

  push(stream: Stream, bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.chunks.push({ stream, offset: this.end, bytes });
    this.end += bytes.byteLength;
    const keepFrom = Math.max(0, this.end - MAX_OUTPUT);
    while (this.chunks[0] && this.chunks[0].offset + this.chunks[0].bytes.byteLength <= keepFrom) this.chunks.shift();
    const head = this.chunks[0];
    if (head && head.offset < keepFrom) {
      head.bytes = head.bytes.slice(keepFrom - head.offset);
      head.offset = keepFrom;
    }
    this.first = keepFrom;
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  read(offset: number) {
    const from = Math.max(offset, this.first);
    const chunks = this.chunks
      .filter((c) => c.offset + c.bytes.byteLength > from)
      .map((c) => ({ stream: c.stream, offset: Math.max(c.offset, from), bytes: c.bytes.subarray(Math.max(0, from - c.offset)) }));
    return { from, skipped: from - offset, chunks, next: Math.max(from, this.end) };
  }

  of(stream: Stream): string {
    return Buffer.concat(this.chunks.filter((c) => c.stream === stream).map((c) => c.bytes)).toString("utf8");
  }

  /** Resolves once there is output past `offset`, the log closed, or `signal` aborted. */
  changed(offset: number, signal: AbortSignal): Promise<void> {
    if (this.end > offset || this.closed || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

interface Entry {
  item: Process;
  /** Started with `stdin: true`. */
  piped: boolean;
  log: OutputLog;
  /** For `cat` with stdin: where writes go (null once closed or never opened). */
  stdin: ((bytes: Uint8Array) => void) | null;
  closeStdin: (() => void) | null;
  abort: AbortController;
  /** The signal that ended it, when one did. */
  endedBy: string | null;
  done: Promise<void>;
}

/** A followed output's events, as Ship's event stream names them. */
export type FollowEvent = { event: "output" | "dropped" | "exit"; data: Record<string, unknown> };

const encode = (bytes: Uint8Array, encoding: "text" | "base64") => Buffer.from(bytes).toString(encoding === "base64" ? "base64" : "utf8");

export class FakeProcesses {
  private readonly entries = new Map<string, Entry>();
  private nextPid = 100;

  constructor(
    private readonly host: ShellHost,
    /** Aborts when the container dies: every command ends with it. */
    private readonly alive: AbortSignal,
  ) {}

  start(command: string, cwd: string, env: Record<string, string>, withStdin = false): Process {
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
      signal: null,
      stdin_open: withStdin,
      started_at: new Date().toISOString(),
      finished_at: null,
    };
    const entry: Entry = {
      item,
      piped: withStdin,
      log: new OutputLog(),
      stdin: null,
      closeStdin: null,
      abort,
      endedBy: null,
      done: Promise.resolve(),
    };
    const stop = AbortSignal.any([abort.signal, this.alive]);
    if (withStdin && command.trim() === "cat") {
      entry.done = new Promise<void>((resolve) => {
        entry.stdin = (bytes) => entry.log.push("stdout", bytes);
        entry.closeStdin = () => {
          this.finish(entry, 0);
          resolve();
        };
        stop.addEventListener("abort", () => {
          this.finish(entry, null);
          resolve();
        });
      });
    } else {
      entry.done = runShell(this.host, command, cwd, env, stop).then(
        (r) => {
          entry.log.push("stdout", new TextEncoder().encode(r.stdout));
          entry.log.push("stderr", new TextEncoder().encode(r.stderr));
          this.finish(entry, stop.aborted ? null : r.exitCode);
        },
        () => this.finish(entry, null),
      );
    }
    this.entries.set(item.process_id, entry);
    return { ...item };
  }

  list(): Process[] {
    return [...this.entries.values()].map((e) => ({ ...e.item }));
  }

  get(id: string): ProcessDetail {
    const e = this.require(id);
    return { ...e.item, output: e.log.of("stdout"), error: e.log.of("stderr"), truncated: e.log.first > 0 };
  }

  /** The output from `offset` on, at once (Ship's JSON page). */
  output(id: string, offset: number, encoding: "text" | "base64"): ProcessOutput {
    const e = this.require(id);
    this.checkOffset(e, offset);
    const r = e.log.read(offset);
    const chunks: OutputChunk[] = r.chunks.map((c) => ({
      stream: c.stream,
      offset: c.offset,
      next_offset: c.offset + c.bytes.byteLength,
      data: encode(c.bytes, encoding),
    }));
    const { status, exit_code, signal } = e.item;
    return {
      process_id: id,
      status,
      exit_code,
      signal,
      offset: r.from,
      next_offset: r.next,
      skipped: r.skipped,
      chunks,
      eof: e.log.closed,
    };
  }

  /** Checks a follow before its stream starts (unknown id, offset past the end). */
  checkFollow(id: string, offset: number): void {
    this.checkOffset(this.require(id), offset);
  }

  /** Follows the output from `offset` until the process ended and all of it was sent. */
  async *follow(id: string, offset: number, encoding: "text" | "base64", signal: AbortSignal): AsyncGenerator<FollowEvent> {
    const e = this.require(id);
    let at = offset;
    while (!signal.aborted) {
      const r = e.log.read(at);
      if (r.skipped > 0) yield { event: "dropped", data: { offset: at, next_offset: r.from, bytes: r.skipped } };
      for (const c of r.chunks) {
        yield {
          event: "output",
          data: { stream: c.stream, offset: c.offset, next_offset: c.offset + c.bytes.byteLength, data: encode(c.bytes, encoding) },
        };
      }
      at = r.next;
      if (e.log.closed && at >= e.log.end) {
        const { status, exit_code, signal: sig } = e.item;
        yield { event: "exit", data: { status, exit_code, signal: sig, next_offset: at } };
        return;
      }
      await e.log.changed(at, signal);
    }
  }

  /** Writes to a `cat` started with stdin (echoed at once); other commands take the bytes unread, as a pipe would. */
  writeStdin(id: string, bytes: Uint8Array, eof: boolean): { process_id: string; written: number; stdin_open: boolean } {
    const e = this.require(id);
    if (!e.item.stdin_open || e.item.status !== "running") {
      const reason = e.item.status === "running" && !e.piped ? "no_stdin" : "stdin_closed";
      throw new BayError("conflict", `stdin of ${id} is not open`, { details: { process_id: id, reason } });
    }
    e.stdin?.(bytes);
    if (eof) {
      e.item.stdin_open = false;
      e.closeStdin?.();
    }
    return { process_id: id, written: bytes.byteLength, stdin_open: e.item.stdin_open };
  }

  signal(id: string, signal: ProcessSignalRequest["signal"]): Process {
    const e = this.require(id);
    if (signal === "SIGSTOP" || signal === "SIGCONT") {
      throw new BayError("validation_error", `the in-memory fake Ship cannot ${signal === "SIGSTOP" ? "stop" : "continue"} a process`, {
        details: { issues: [{ path: "signal", message: "not supported by the in-memory fake Ship" }] },
      });
    }
    if (e.item.status === "running") {
      e.endedBy = signal;
      e.abort.abort();
    }
    return { ...e.item };
  }

  async kill(id: string): Promise<Process> {
    const e = this.require(id);
    if (e.item.status === "running") {
      e.endedBy = "SIGKILL";
      e.abort.abort();
      await e.done;
    }
    return { ...e.item };
  }

  private checkOffset(e: Entry, offset: number): void {
    if (offset > e.log.end) {
      throw new BayError("validation_error", `offset ${offset} is past the end of the output (${e.log.end})`, {
        details: { issues: [{ path: "offset", message: `at most ${e.log.end}` }] },
      });
    }
  }

  private require(id: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw new BayError("not_found", `process not found: ${id}`, { details: { process_id: id } });
    return e;
  }

  /** A command ended by a signal has no exit code, like Ship's. */
  private finish(e: Entry, exitCode: number | null): void {
    if (e.item.status !== "running") return;
    const signal = exitCode === null ? (e.endedBy ?? "SIGKILL") : null;
    e.item.status = signal ? "killed" : "exited";
    e.item.exit_code = exitCode;
    e.item.signal = signal;
    e.item.stdin_open = false;
    e.item.finished_at = new Date().toISOString();
    e.log.close();
  }
}
