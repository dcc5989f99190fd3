import type { Subprocess } from "bun";
import { join } from "node:path";
import { childEnv } from "../../child-env.ts";
import { chunksOf } from "../../streams.ts";
import type { DisplayEvent, ResultEvent, StreamEvent } from "./protocol.ts";

/** The end of a cell, as the kernel reports it. */
export type JsCellResult = Omit<ResultEvent, "event" | "id">;
/** Output of a cell while it runs. */
export type JsCellEvent = StreamEvent | DisplayEvent;

/** How to start a JS kernel process. */
export interface JsKernelProcessOptions {
  /** The context's working directory: packages and relative imports resolve from it. */
  cwd: string;
  /** Cap on one cell's output (SHIP_MAX_OUTPUT_BYTES in the kernel). */
  maxOutputBytes: number;
  language?: "javascript" | "typescript";
  /** Argv that starts the kernel; default jsKernelCommand(). */
  command?: string[];
  /** Extra environment for the kernel (on top of childEnv()). */
  env?: Record<string, string | undefined>;
}

const STDERR_TAIL = 4096;
/** After the process exits, how long its pipes may still deliver (a child of user code may hold them). */
const PIPE_GRACE_MS = 250;

/** Longest protocol line accepted: a result carries output, data and error, each capped near maxOutputBytes. */
export function maxLineChars(maxOutputBytes: number): number {
  return Math.max(16 * 1024 * 1024, maxOutputBytes * 16);
}

/**
 * The argv of a JS kernel: inside the compiled `ship` binary, the same executable with the
 * `js-kernel` sub-command (no second runtime in the image); from source (tests, `bun
 * src/ship/main.ts`), Ship's main.ts run by the same bun with that sub-command.
 */
export function jsKernelCommand(): string[] {
  if (Bun.main.startsWith("/$bunfs/")) return [process.execPath, "js-kernel"];
  return [process.execPath, join(import.meta.dir, "..", "..", "main.ts"), "js-kernel"];
}

interface Waiter {
  resolve: (result: JsCellResult) => void;
  onEvent?: (event: JsCellEvent) => void;
}

/**
 * One JS kernel process (one code context). Requests go in on stdin as JSON lines;
 * events come back as JSON lines on stdout, which the kernel keeps private to the
 * protocol (user output is captured inside the kernel and never reaches it).
 */
export class JsKernelProcess {
  /** Resolves once the kernel said it is ready; rejects if it dies first. */
  readonly ready: Promise<{ runtime: string; language: string }>;
  /** Resolves when the process is gone (always; never rejects). */
  readonly exited: Promise<void>;
  private readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private stderrTail = "";
  private alive = true;
  private killReason: string | null = null;
  private readonly maxLine: number;
  private readonly readers: Array<ReadableStreamDefaultReader<Uint8Array>> = [];

  constructor(opts: JsKernelProcessOptions) {
    this.maxLine = maxLineChars(opts.maxOutputBytes);
    const command = [...(opts.command ?? jsKernelCommand()), ...(opts.language ? ["--language", opts.language] : [])];
    const env = childEnv({ ...opts.env, SHIP_MAX_OUTPUT_BYTES: String(opts.maxOutputBytes) });
    // With it, the `ship` binary would act as the bun CLI and look for a script named js-kernel.
    delete env.BUN_BE_BUN;
    // detached: its own process group, so kill() also ends whatever user code spawned.
    this.proc = Bun.spawn(command, {
      cwd: opts.cwd,
      detached: true,
      env,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    let markReady!: (info: { runtime: string; language: string }) => void;
    let failReady!: (err: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    this.ready.catch(() => {}); // observed by whoever awaits it
    const pumps = Promise.all([this.pumpStderr(), this.pumpEvents(markReady)]);
    this.exited = this.proc.exited
      .then(() => {
        this.alive = false;
        return Promise.race([pumps, Bun.sleep(PIPE_GRACE_MS)]);
      })
      .then(() => {
        for (const reader of this.readers) reader.cancel().catch(() => {});
        this.killGroup(); // leftovers of user code holding the old context's state
        failReady(new Error(this.describeExit()));
      });
  }

  /** The kernel's pid. */
  get pid(): number {
    return this.proc.pid;
  }

  /** False once the process has exited or was killed. */
  get isAlive(): boolean {
    return this.alive;
  }

  /** Why the process ended: exit status plus the end of its stderr. */
  describeExit(): string {
    if (this.killReason) return `js kernel was killed: ${this.killReason}`;
    const status = this.proc.signalCode ? `signal ${this.proc.signalCode}` : `exit code ${this.proc.exitCode}`;
    const tail = this.stderrTail.trim().split("\n").slice(-3).join(" | ");
    return `js kernel exited (${status})${tail ? `: ${tail}` : ""}`;
  }

  /**
   * Sends a cell; resolves with its result (never, if the process dies: race `exited`).
   * `onEvent` receives its stream and display events as they come.
   */
  send(code: string, onEvent?: (event: JsCellEvent) => void): Promise<JsCellResult> {
    const id = this.nextId++;
    const result = new Promise<JsCellResult>((resolve) => this.waiters.set(id, { resolve, onEvent }));
    try {
      this.proc.stdin.write(`${JSON.stringify({ id, code })}\n`);
      this.proc.stdin.flush();
    } catch {
      // The process is dying; the caller sees that through `exited`.
    }
    return result;
  }

  /** Interrupts the running cell (it ends with success:false; the context survives). */
  interrupt(): void {
    if (this.alive) this.proc.kill("SIGINT");
  }

  /** Asks the kernel to finish: it ends after the cells already sent (closes its stdin). */
  close(): void {
    try {
      this.proc.stdin.end();
    } catch {
      // Already closed.
    }
  }

  /** Ends the process and everything in its process group for good. */
  kill(reason?: string): void {
    if (!this.alive) return;
    if (reason && !this.killReason) this.killReason = reason;
    this.killGroup();
    this.alive = false;
  }

  private killGroup(): void {
    try {
      process.kill(-this.proc.pid, "SIGKILL");
    } catch {
      try {
        this.proc.kill("SIGKILL");
      } catch {
        // Already reaped.
      }
    }
  }

  private async pumpEvents(markReady: (info: { runtime: string; language: string }) => void): Promise<void> {
    const decoder = new TextDecoder();
    let parts: string[] = [];
    let partsLength = 0;
    try {
      for await (const chunk of chunksOf(this.proc.stdout, (r) => this.readers.push(r))) {
        const text = decoder.decode(chunk, { stream: true });
        let start = 0;
        let nl: number;
        while ((nl = text.indexOf("\n", start)) >= 0) {
          parts.push(text.slice(start, nl));
          const line = parts.join("");
          parts = [];
          partsLength = 0;
          start = nl + 1;
          this.dispatch(line, markReady);
        }
        const rest = start === 0 ? text : text.slice(start);
        parts.push(rest);
        partsLength += rest.length;
        if (partsLength > this.maxLine) {
          parts = [];
          partsLength = 0;
          console.error(`[ship] js kernel sent a line longer than ${this.maxLine} characters; killing it`);
          this.kill(`it sent a line longer than ${this.maxLine} characters`);
          return;
        }
      }
    } catch {
      // Pipe closed with the process.
    }
  }

  private dispatch(line: string, markReady: (info: { runtime: string; language: string }) => void): void {
    if (!line) return;
    let msg: { event?: string; id?: number; runtime?: string; language?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return; // only the kernel writes here; a line cut by an interrupt is skipped
    }
    if (msg.event === "ready") {
      markReady({ runtime: msg.runtime ?? "unknown", language: msg.language ?? "javascript" });
      return;
    }
    if (typeof msg.id !== "number") return;
    const waiter = this.waiters.get(msg.id);
    if (!waiter) return;
    if (msg.event === "result") {
      this.waiters.delete(msg.id);
      const { event: _event, id: _id, ...result } = msg as ResultEvent;
      waiter.resolve(result);
    } else if (msg.event === "stream" || msg.event === "display") {
      waiter.onEvent?.(msg as JsCellEvent);
    }
  }

  private async pumpStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of chunksOf(this.proc.stderr, (r) => this.readers.push(r))) {
        const text = decoder.decode(chunk, { stream: true });
        process.stderr.write(text);
        this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
      }
    } catch {
      // Pipe closed with the process.
    }
  }
}
