/**
 * E2B's PTYs on Bay's terminals. `Process.Start` with a `pty` opens a sandbox
 * terminal (a login shell on a PTY in the Ship, bridged by Bay) and names it by
 * a pid of its own; its output streams as `pty` data events, `SendInput` writes
 * keystrokes, `Update` resizes, `SendSignal` hangs it up, and `Connect`
 * reattaches to it. Nothing piles up: output waits in the bridge's flow control
 * (the Ship stops the PTY) until a stream reads it. The terminal lives in this
 * Bay process: calls for it must reach the replica that opened it (one Bay, or
 * sticky routing by sandbox id), and it ends with its sandbox's runtime.
 */
import type { CallContext } from "../../domain/capability-router.ts";
import type { SandboxTerminal, TerminalStart } from "../../domain/sandbox-terminal.ts";
import type { TerminalBridge, TerminalPeer } from "../../domain/terminal-bridge.ts";
import { BayError } from "../../errors.ts";
import type { ProcessOutput } from "./process-backend.ts";

/** Bytes a terminal keeps for a stream that reads slowly (or not at all) before its flow control holds the PTY. */
const HIGH_WATER = 256 * 1024;
/** PTY pids start here: far above what a container's own pids reach under its pids limit. */
const FIRST_PID = 4_000_000;

type Exit = { exitCode: number; signal: string | null };

/** One terminal and its reader. */
export class PtySession implements TerminalPeer {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private exit: Exit | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  /** Bumped by each new reader: an older stream stops when a reattach takes over. */
  private generation = 0;

  constructor(
    readonly pid: number,
    readonly sandboxId: string,
    readonly bridge: TerminalBridge,
  ) {}

  // TerminalPeer: what the bridge sends to "its client".
  send(data: string | Uint8Array): void {
    if (typeof data !== "string") {
      this.queue.push(data);
      this.queued += data.byteLength;
    } else {
      try {
        const msg = JSON.parse(data) as { type?: string; exit_code?: number | null; signal?: string | null };
        if (msg.type === "exit") this.exit = { exitCode: msg.exit_code ?? -1, signal: msg.signal ?? null };
      } catch {
        // control messages Bay does not read
      }
    }
    this.notify();
  }

  close(_code: number, reason: string): void {
    if (!this.exit) {
      try {
        const info = JSON.parse(reason) as { exit_code?: number | null; signal?: string | null };
        this.exit = { exitCode: info.exit_code ?? -1, signal: info.signal ?? null };
      } catch {
        this.exit = { exitCode: -1, signal: "SIGHUP" };
      }
    }
    this.closed = true;
    this.notify();
  }

  bufferedAmount(): number {
    return this.queued;
  }

  /** Keystrokes. */
  input(bytes: Uint8Array): void {
    if (this.closed) throw new BayError("not_found", `terminal ${this.pid} has ended`);
    this.bridge.fromClient(bytes);
  }

  resize(cols: number, rows: number): void {
    if (this.closed) throw new BayError("not_found", `terminal ${this.pid} has ended`);
    this.bridge.fromClient(JSON.stringify({ type: "resize", cols, rows }));
  }

  /** Hangs the shell up (SIGHUP, then SIGKILL in the Ship). */
  hangUp(): void {
    if (!this.exit) this.exit = { exitCode: -1, signal: "SIGKILL" };
    this.bridge.clientClosed();
    this.closed = true;
    this.notify();
  }

  get ended(): boolean {
    return this.closed;
  }

  /** The terminal's output from now on, then its exit. A newer reader takes over from this one. */
  async *read(signal: AbortSignal): AsyncIterable<ProcessOutput> {
    const mine = ++this.generation;
    const onAbort = () => this.notify();
    signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        if (signal.aborted || mine !== this.generation) return;
        const chunk = this.queue.shift();
        if (chunk) {
          this.queued -= chunk.byteLength;
          if (this.queued < HIGH_WATER) this.bridge.drained();
          yield { kind: "pty", data: chunk };
          continue;
        }
        if (this.closed) {
          const exit = this.exit ?? { exitCode: -1, signal: null };
          yield { kind: "exit", exitCode: exit.exitCode, signal: exit.signal, status: exit.signal ? "killed" : "exited" };
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/** The PTYs this process opened, by sandbox and pid. */
export class PtySessions {
  private readonly sessions = new Map<string, PtySession>();
  private nextPid = FIRST_PID;

  constructor(private readonly terminal: SandboxTerminal) {}

  /**
   * Opens a terminal (its shell in `start.cwd` with `start.env`); `deadlineAt` (epoch ms):
   * it is hung up then (while it is open; nothing is kept after it ends).
   */
  async open(ctx: CallContext, size: { cols: number; rows: number }, deadlineAt?: number, start: TerminalStart = {}): Promise<PtySession> {
    const cols = clamp(size.cols || 80);
    const rows = clamp(size.rows || 24);
    const bridge = await this.terminal.open(ctx, { cols, rows }, start);
    const session = new PtySession(this.nextPid++, ctx.sandboxId, bridge);
    bridge.attach(session);
    const key = `${ctx.sandboxId}/${session.pid}`;
    this.sessions.set(key, session);
    const lifetime = deadlineAt === undefined ? undefined : setTimeout(() => session.hangUp(), Math.max(0, deadlineAt - Date.now()));
    lifetime?.unref?.();
    void bridge.closed.finally(() => {
      clearTimeout(lifetime);
      // Kept a little while after it ends, so a reader that reattaches still learns its exit.
      setTimeout(() => this.sessions.delete(key), 60_000).unref?.();
    });
    return session;
  }

  get(sandboxId: string, pid: number): PtySession | undefined {
    return this.sessions.get(`${sandboxId}/${pid}`);
  }

  /** Live terminals of a sandbox (for List). */
  list(sandboxId: string): PtySession[] {
    return [...this.sessions.values()].filter((s) => s.sandboxId === sandboxId && !s.ended);
  }
}

const clamp = (n: number) => Math.min(Math.max(Math.trunc(n), 1), 1000);
