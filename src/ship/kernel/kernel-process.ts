import type { Subprocess } from "bun";
import { writeFileSync } from "node:fs";
import { chunksOf } from "../streams.ts";
import { isDisplayEvent, isStreamEvent, resultFields } from "./event-shape.ts";
import type { DisplayEvent, KernelRequest, ResultEvent, StreamEvent } from "./protocol.ts";

/** The end of a cell, as the kernel reports it. */
export type CellResult = Omit<ResultEvent, "event" | "id">;
/** Output of a cell while it runs. */
export type CellEvent = StreamEvent | DisplayEvent;
/**
 * Receives a cell's events as they come. A returned promise holds the reading of the
 * kernel's channel until it settles: a slow consumer stops the kernel (its pipe fills)
 * instead of growing a buffer in Ship.
 */
export type CellEventHandler = (event: CellEvent) => unknown;

/** Environment variables a cell runs with (see KernelRequest). */
export interface CellEnv {
  /** The sandbox's own, kept by the kernel. */
  baseEnv?: Record<string, string>;
  /** This cell's only. */
  env?: Record<string, string>;
}

/** How to start a kernel process. */
export interface KernelProcessOptions {
  /** Argv of the kernel. */
  command: string[];
  /** Its working directory. */
  cwd: string;
  /** Its whole environment. */
  env: Record<string, string | undefined>;
  /** Cap on one cell's output: sizes the longest protocol line accepted. */
  maxOutputBytes: number;
  /** Names the kernel in messages: `python kernel`, `js kernel`. */
  label: string;
}

/** What the kernel said when it became ready. */
export interface KernelInfo {
  runtime: string;
  language: string;
}

const STDERR_TAIL = 4096;
/** After the process exits, how long its pipes may still deliver (a child of user code may hold them). */
const PIPE_GRACE_MS = 250;

/**
 * Raised for every kernel (an unprivileged process may raise its own, never lower it):
 * when a context's memory blows the container's limit, the kernel OOM killer picks a
 * kernel, never Ship.
 */
const OOM_SCORE_ADJ = "500";

function raiseOomScore(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, OOM_SCORE_ADJ);
  } catch (err) {
    // Not Linux, or gone already: the kernel keeps the default score.
    console.error(`[ship] could not raise the oom score of kernel ${pid}: ${(err as Error).message}`);
  }
}

/** Longest protocol line accepted: a result carries output, data and error, each capped near maxOutputBytes. */
export function maxLineChars(maxOutputBytes: number): number {
  return Math.max(16 * 1024 * 1024, maxOutputBytes * 16);
}

interface Waiter {
  resolve: (result: CellResult) => void;
  onEvent?: CellEventHandler;
  /** The kernel said this cell is being interrupted (`interrupted`). */
  acknowledged?: boolean;
  /** Ship asked to interrupt this cell: only then does an `interrupted` for it count. */
  interruptAsked?: boolean;
}

/**
 * A pipe write that cannot finish at once (a large cell, a kernel busy in the
 * previous one) settles later, and rejects (EPIPE) if the kernel dies first:
 * the caller learns that from `exited`, and the rejection must not end Ship.
 */
function later(r: number | Promise<number>): void {
  if (r instanceof Promise) r.catch(() => {});
}

/**
 * One kernel process speaking the line protocol (protocol.ts): requests go in on stdin
 * as JSON lines, events come back as JSON lines on stdout, which the kernel keeps
 * private to the protocol (user output is captured inside the kernel and never reaches
 * it). It runs in its own process group, so kill() also ends whatever user code spawned.
 */
export class KernelProcess {
  /** Resolves once the kernel said it is ready; rejects if it dies first. */
  readonly ready: Promise<KernelInfo>;
  /** Resolves when the process is gone (always; never rejects). */
  readonly exited: Promise<void>;
  private readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  /** The base variables this process was last sent (JSON), if any. */
  private baseEnvSent: string | null = null;
  private stderrTail = "";
  private alive = true;
  private killReason: string | null = null;
  private readonly maxLine: number;
  private readonly label: string;
  private readonly readers: Array<ReadableStreamDefaultReader<Uint8Array>> = [];
  private acknowledgements = 0;

  constructor(opts: KernelProcessOptions) {
    this.maxLine = maxLineChars(opts.maxOutputBytes);
    this.label = opts.label;
    this.proc = Bun.spawn(opts.command, {
      cwd: opts.cwd,
      detached: true,
      env: opts.env,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    let markReady!: (info: KernelInfo) => void;
    let failReady!: (err: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    this.ready.catch(() => {}); // observed by whoever awaits it
    // Once ready, never before: until the child has exec'd it is a copy of Ship, which is
    // non-dumpable, so its /proc files belong to root and the write would fail. Registered
    // first, it runs before any cell can be sent.
    void this.ready.then(
      () => raiseOomScore(this.proc.pid),
      () => {},
    );
    const pumps = Promise.all([this.pumpStderr(), this.pumpEvents(markReady)]);
    // The process ending is what counts: a child of user code may keep the pipes open forever.
    this.exited = this.proc.exited
      .then(() => {
        this.alive = false;
        return Promise.race([pumps, Bun.sleep(PIPE_GRACE_MS)]);
      })
      .then(() => {
        for (const reader of this.readers) reader.cancel().catch(() => {});
        this.killGroup(); // leftovers of user code holding the old kernel's state
        failReady(new Error(this.describeExit()));
      });
  }

  /** The kernel's pid. */
  get pid(): number {
    return this.proc.pid;
  }

  /**
   * Whether the kernel said the cell it runs now is being interrupted (`interrupted`).
   * Per cell, never by time: an earlier cell's acknowledgement, even one in the same
   * millisecond as this cell's interrupt, does not count for it.
   */
  get runningCellAcknowledged(): boolean {
    for (const waiter of this.waiters.values()) return waiter.acknowledged === true;
    return false;
  }

  /** How many cells the kernel said it was interrupting, over its life. */
  get acknowledgedInterrupts(): number {
    return this.acknowledgements;
  }

  /** False once the process has exited or was killed. */
  get isAlive(): boolean {
    return this.alive;
  }

  /** Why the process ended: exit status plus the end of its stderr. */
  describeExit(): string {
    if (this.killReason) return `${this.label} was killed: ${this.killReason}`;
    const status = this.proc.signalCode ? `signal ${this.proc.signalCode}` : `exit code ${this.proc.exitCode}`;
    const tail = this.stderrTail.trim().split("\n").slice(-3).join(" | ");
    return `${this.label} exited (${status})${tail ? `: ${tail}` : ""}`;
  }

  /**
   * Sends a cell; resolves with its result (never, if the process dies: race `exited`).
   * `onEvent` receives its stream and display events as they come.
   */
  send(code: string, onEvent?: CellEventHandler, env: CellEnv = {}): Promise<CellResult> {
    const id = this.nextId++;
    const result = new Promise<CellResult>((resolve) => this.waiters.set(id, { resolve, onEvent }));
    const request: KernelRequest = { id, code };
    if (env.env && Object.keys(env.env).length > 0) request.env = env.env;
    // The base variables go once per process (again only when they change): a cell that changed one keeps its change.
    const base = env.baseEnv && Object.keys(env.baseEnv).length > 0 ? JSON.stringify(env.baseEnv) : null;
    if (base !== null && base !== this.baseEnvSent) {
      request.base_env = env.baseEnv;
      this.baseEnvSent = base;
    }
    try {
      this.proc.stdin.write(`${JSON.stringify(request)}\n`);
      later(this.proc.stdin.flush());
    } catch {
      // The process is dying; the caller sees that through `exited`.
    }
    return result;
  }

  /** Interrupts the running cell (SIGINT: it ends with success false; the kernel keeps its state). */
  interrupt(): void {
    this.askInterrupt();
    if (this.alive) this.proc.kill("SIGINT");
  }

  /**
   * Notes that Ship is interrupting the running cell. An `interrupted` that comes before
   * is not believed: user code can write to the kernel's channel, and a forged early
   * acknowledgement would stop the signals that end a loop and stretch Ship's wait to
   * the acknowledged grace.
   */
  protected askInterrupt(): void {
    for (const waiter of this.waiters.values()) {
      waiter.interruptAsked = true;
      return;
    }
  }

  /** The cell the kernel is running (cells run in the order sent), if any. */
  protected runningCell(): number | undefined {
    for (const id of this.waiters.keys()) return id;
    return undefined;
  }

  /** Writes one protocol line to the kernel's stdin; false if it is gone. */
  protected writeLine(message: unknown): boolean {
    if (!this.alive) return false;
    try {
      this.proc.stdin.write(`${JSON.stringify(message)}\n`);
      later(this.proc.stdin.flush());
      return true;
    } catch {
      return false;
    }
  }

  /** Asks the kernel to finish: it ends after the cells already sent (closes its stdin). */
  close(): void {
    try {
      later(this.proc.stdin.end());
    } catch {
      // Already closed.
    }
  }

  /** Ends the process and everything in its process group for good. */
  kill(reason?: string): void {
    if (!this.alive) return;
    if (reason && !this.killReason) this.killReason = reason;
    this.killGroup();
    this.alive = false; // no new work for it while it goes
  }

  private killGroup(): void {
    try {
      process.kill(-this.proc.pid, "SIGKILL");
    } catch {
      // The group is gone already; make sure the kernel itself is.
      try {
        this.proc.kill("SIGKILL");
      } catch {
        // Already reaped.
      }
    }
  }

  private async pumpEvents(markReady: (info: KernelInfo) => void): Promise<void> {
    const decoder = new TextDecoder();
    // The current line so far, in pieces: each chunk is scanned once, so a long line costs linear time.
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
          const pending = this.dispatch(line, markReady);
          // Backpressure: the next line is read once the consumer took this one.
          if (pending) await pending.catch(() => {});
        }
        const rest = start === 0 ? text : text.slice(start);
        parts.push(rest);
        partsLength += rest.length;
        if (partsLength > this.maxLine) {
          parts = [];
          partsLength = 0;
          console.error(`[ship] ${this.label} sent a line longer than ${this.maxLine} characters; killing it`);
          this.kill(`it sent a line longer than ${this.maxLine} characters`);
          return;
        }
      }
    } catch {
      // Pipe closed with the process.
    }
  }

  private dispatch(line: string, markReady: (info: KernelInfo) => void): Promise<unknown> | undefined {
    if (!line) return undefined;
    let msg: { event?: string; id?: number; runtime?: string; language?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return undefined; // a line cut by an interrupt is skipped
    }
    // `null` or `5` is JSON too; reading a field of it would end the channel's reader.
    if (typeof msg !== "object" || msg === null) return undefined;
    if (msg.event === "ready") {
      markReady({ runtime: msg.runtime ?? "unknown", language: msg.language ?? "unknown" });
      return undefined;
    }
    if (typeof msg.id !== "number") return undefined;
    const waiter = this.waiters.get(msg.id);
    if (!waiter) return undefined;
    // User code can write to this channel too (event-shape.ts): malformed events are skipped.
    const fields = msg as Record<string, unknown>;
    if (msg.event === "result") {
      const result = resultFields(fields);
      if (!result) return undefined;
      this.waiters.delete(msg.id);
      waiter.resolve(result);
      return undefined;
    }
    if (msg.event === "interrupted") {
      if (!waiter.interruptAsked) return undefined;
      if (!waiter.acknowledged) this.acknowledgements++;
      waiter.acknowledged = true;
      return undefined;
    }
    if ((msg.event === "stream" && isStreamEvent(fields)) || (msg.event === "display" && isDisplayEvent(fields))) {
      try {
        const pending = waiter.onEvent?.(msg as CellEvent);
        return pending instanceof Promise ? pending : undefined;
      } catch {
        return undefined; // a consumer's bug must not stop the channel
      }
    }
    return undefined;
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
