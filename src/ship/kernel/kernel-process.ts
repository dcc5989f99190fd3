import type { Subprocess } from "bun";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childEnv } from "../child-env.ts";
import { chunksOf } from "../streams.ts";
import driverSource from "./driver.py" with { type: "text" };

/** One reply from the driver, as it sends it. */
export interface DriverReply {
  id: number;
  success: boolean;
  output: string;
  error: string | null;
  data: Array<{ type: "execute_result" | "display_data"; data: Record<string, string> }>;
  execution_count: number | null;
  truncated: boolean;
}

/** How to start a driver process. */
export interface KernelProcessOptions {
  python: string;
  workspace: string;
  maxOutputBytes: number;
}

const STDERR_TAIL = 4096;
/** After the process exits, how long its pipes may still deliver (a fork child may hold them). */
const PIPE_GRACE_MS = 250;

/** Longest protocol line accepted: the driver caps a reply's text near 3 × maxOutputBytes. */
export function maxReplyChars(maxOutputBytes: number): number {
  return Math.max(16 * 1024 * 1024, maxOutputBytes * 16);
}

/**
 * Writes the embedded driver to a temp file (again on every start, in case user
 * code removed it) so `ps` shows a short command line; the script itself lives
 * inside the Ship binary, so the host and the compiled image run the same code.
 */
function writeDriverScript(): string {
  const path = join(tmpdir(), `ship-kernel-driver-${process.pid}.py`);
  writeFileSync(path, driverSource, { mode: 0o600 });
  return path;
}

/**
 * One python driver process. Requests go in on stdin as JSON lines, replies come
 * back as JSON lines on stdout (the driver keeps user output off that fd).
 */
export class KernelProcess {
  /** Resolves once the driver said it is ready; rejects if it dies first. */
  readonly ready: Promise<{ python: string }>;
  /** Resolves when the process is gone (always; never rejects). */
  readonly exited: Promise<void>;
  private readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private readonly waiters = new Map<number, (reply: DriverReply) => void>();
  private nextId = 1;
  private stderrTail = "";
  private alive = true;
  private killReason: string | null = null;
  private readonly maxLine: number;
  private readonly readers: Array<ReadableStreamDefaultReader<Uint8Array>> = [];

  constructor(opts: KernelProcessOptions) {
    this.maxLine = maxReplyChars(opts.maxOutputBytes);
    // -I: neither the script's (writable) directory nor the user site-packages nor
    // PYTHON* variables can change what the driver imports. detached: its own process
    // group, so a restart also ends whatever user code forked or spawned.
    this.proc = Bun.spawn([opts.python, "-I", "-u", writeDriverScript()], {
      cwd: opts.workspace,
      detached: true,
      env: childEnv({
        SHIP_WORKSPACE: opts.workspace,
        SHIP_MAX_OUTPUT_BYTES: String(opts.maxOutputBytes),
      }),
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    let markReady!: (info: { python: string }) => void;
    let failReady!: (err: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    this.ready.catch(() => {}); // observed by whoever awaits it
    const pumps = Promise.all([this.pumpStderr(), this.pumpReplies(markReady)]);
    // The process ending is what counts: a fork child may keep the pipes open forever.
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

  /** The driver's pid. */
  get pid(): number {
    return this.proc.pid;
  }

  /** False once the process has exited or was killed. */
  get isAlive(): boolean {
    return this.alive;
  }

  /** Why the process ended: exit status plus the end of its stderr. */
  describeExit(): string {
    const status = this.proc.signalCode ? `signal ${this.proc.signalCode}` : `exit code ${this.proc.exitCode}`;
    if (this.killReason) return `python kernel was killed: ${this.killReason}`;
    const tail = this.stderrTail.trim().split("\n").slice(-3).join(" | ");
    return `python kernel exited (${status})${tail ? `: ${tail}` : ""}`;
  }

  /** Sends code to run; resolves with the reply (never if the process dies). */
  send(code: string): Promise<DriverReply> {
    const id = this.nextId++;
    const reply = new Promise<DriverReply>((resolve) => this.waiters.set(id, resolve));
    try {
      this.proc.stdin.write(`${JSON.stringify({ id, code })}\n`);
      this.proc.stdin.flush();
    } catch {
      // The process is dying; the caller sees that through `exited`.
    }
    return reply;
  }

  /** Interrupts running code (KeyboardInterrupt in the kernel). */
  interrupt(): void {
    if (this.alive) this.proc.kill("SIGINT");
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
      // The group is gone already; make sure the driver itself is.
      try {
        this.proc.kill("SIGKILL");
      } catch {
        // Already reaped.
      }
    }
  }

  private async pumpReplies(markReady: (info: { python: string }) => void): Promise<void> {
    const decoder = new TextDecoder();
    // The current line so far, in pieces: each chunk is scanned once, so a long
    // reply costs linear time.
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
          console.error(`[ship] python kernel sent a reply longer than ${this.maxLine} characters; killing it`);
          this.kill(`its reply was longer than ${this.maxLine} characters`);
          return;
        }
      }
    } catch {
      // Pipe closed with the process.
    }
  }

  private dispatch(line: string, markReady: (info: { python: string }) => void): void {
    let msg: { event?: string; id?: number; python?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not ours; the driver only writes JSON here
    }
    if (msg.event === "ready") {
      markReady({ python: msg.python ?? "unknown" });
      return;
    }
    if (typeof msg.id === "number") {
      const waiter = this.waiters.get(msg.id);
      this.waiters.delete(msg.id);
      waiter?.(msg as DriverReply);
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
