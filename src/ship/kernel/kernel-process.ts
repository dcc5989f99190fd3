import type { Subprocess } from "bun";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

  constructor(opts: KernelProcessOptions) {
    this.proc = Bun.spawn([opts.python, "-u", writeDriverScript()], {
      cwd: opts.workspace,
      env: {
        ...process.env,
        SHIP_WORKSPACE: opts.workspace,
        SHIP_MAX_OUTPUT_BYTES: String(opts.maxOutputBytes),
      },
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
    void this.pumpStderr();
    this.exited = Promise.all([this.proc.exited, this.pumpReplies(markReady)]).then(() => {
      this.alive = false;
      failReady(new Error(this.describeExit()));
    });
  }

  /** The driver's pid. */
  get pid(): number {
    return this.proc.pid;
  }

  /** False once the process has exited. */
  get isAlive(): boolean {
    return this.alive;
  }

  /** Why the process ended: exit status plus the end of its stderr. */
  describeExit(): string {
    const status = this.proc.signalCode ? `signal ${this.proc.signalCode}` : `exit code ${this.proc.exitCode}`;
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

  /** Ends the process for good. */
  kill(): void {
    if (this.alive) this.proc.kill("SIGKILL");
  }

  private async pumpReplies(markReady: (info: { python: string }) => void): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of chunksOf(this.proc.stdout)) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          this.dispatch(line, markReady);
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
      for await (const chunk of chunksOf(this.proc.stderr)) {
        const text = decoder.decode(chunk, { stream: true });
        process.stderr.write(text);
        this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
      }
    } catch {
      // Pipe closed with the process.
    }
  }
}
