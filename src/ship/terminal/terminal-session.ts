/**
 * One terminal: a login shell on a PTY, and at most one WebSocket attached to it.
 *
 * Output goes out as binary frames. It is never buffered without bound: while
 * the peer has more than `windowBytes` unacknowledged (it sends `ack` messages
 * as it passes output on) or Ship's own send buffer holds more than that, the
 * PTY's output is stopped (TCOOFF), so the programs writing simply wait, as on
 * a slow serial line. Where the kernel offers no such control, output beyond the
 * window is dropped and the peer told how much (`dropped`).
 *
 * Input (binary frames) is written to the PTY; what the shell has not read yet
 * is bounded too: past `maxPendingInput` further input is refused with an error
 * message (once, until input is taken again) instead of queueing. So that a peer can send no faster than the shell
 * takes it (a file piped in), the attach begins with `{"type":"input_acks"}` and
 * `{"type":"input_ack","bytes":n}` follows as input reaches the PTY (or is refused:
 * it is gone either way).
 */
import type { Subprocess, Terminal } from "bun";
import { childEnv } from "../child-env.ts";
import { signalName } from "../shell/spawn.ts";
import type { ShipSocket } from "../ws.ts";
import { ptyFlow, type PtyFlow } from "./pty-flow.ts";
import { signalSession } from "./session-signal.ts";

export interface TerminalOptions {
  cols: number;
  rows: number;
  workspace: string;
  /** Where the shell starts (absolute, checked); default the workspace. */
  cwd?: string;
  /** Variables the shell starts with, over Ship's defaults (TERM, …). */
  env?: Record<string, string>;
  /** Unacknowledged output bytes before the PTY is stopped. */
  windowBytes?: number;
  /** Input bytes the shell has not read before further input is refused. */
  maxPendingInput?: number;
}

/** How the shell ended. */
export interface TerminalExit {
  exit_code: number | null;
  signal: string | null;
}

const DEFAULT_WINDOW = 1024 * 1024;
const DEFAULT_PENDING_INPUT = 1024 * 1024;
/** Output a terminal nobody attached to yet may hold before its PTY is stopped. */
const UNATTACHED_BYTES = 64 * 1024;
/** After the shell exits, how long to wait for the rest of its output. */
const DRAIN_GRACE_MS = 300;
/** After a hangup, how long processes get before SIGKILL. */
const HANGUP_GRACE_MS = 2_000;

export class TerminalSession {
  private readonly proc: Subprocess;
  private readonly term: Terminal;
  private flow: PtyFlow | null;
  private readonly windowBytes: number;
  private readonly maxPendingInput: number;
  private socket: ShipSocket | null = null;
  /** Output produced before anyone attached. */
  private early: Uint8Array[] = [];
  private earlyBytes = 0;
  private unacked = 0;
  private stopped = false;
  /** Output dropped where the PTY cannot be stopped; reported once output flows again. */
  private dropped = 0;
  private pendingInput = 0;
  /** Input taken or refused since the last `input_ack`, and whether one is on its way. */
  private unackedInput = 0;
  private inputAckScheduled = false;
  /** Input is being refused; the peer was told once. */
  private refusingInput = false;
  private ptyEnded = false;
  private ended = false;
  /** Set when an upgrade took this terminal (it is attached once). */
  claimed = false;
  /** Set when the socket opened. */
  attached = false;
  /** Resolves once the shell has exited and the terminal is closed. */
  readonly done: Promise<TerminalExit>;

  constructor(opts: TerminalOptions) {
    this.windowBytes = opts.windowBytes ?? DEFAULT_WINDOW;
    this.maxPendingInput = opts.maxPendingInput ?? DEFAULT_PENDING_INPUT;
    this.proc = Bun.spawn(["bash", "-il"], {
      cwd: opts.cwd ?? opts.workspace,
      env: childEnv({ TERM: "xterm-256color", COLORTERM: "truecolor", SHELL: "/bin/bash", ...opts.env }),
      terminal: {
        cols: opts.cols,
        rows: opts.rows,
        name: "xterm-256color",
        data: (_t, bytes) => this.output(bytes),
        drain: () => this.inputTaken(),
        exit: () => {
          this.ptyEnded = true;
        },
      },
    });
    this.term = this.proc.terminal!;
    this.flow = ptyFlow(this.proc.pid);
    this.done = this.proc.exited.then(() => this.finish());
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Attaches the one socket; output kept until now is sent first. */
  attach(ws: ShipSocket): void {
    this.socket = ws;
    this.attached = true;
    this.control({ type: "input_acks" });
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    for (const chunk of early) this.send(chunk);
    this.checkFlow();
    if (this.ended) this.sendExit();
  }

  /** Bytes typed by the client. */
  input(bytes: Uint8Array): void {
    if (this.ended || bytes.byteLength === 0) return;
    if (this.pendingInput + bytes.byteLength > this.maxPendingInput) {
      this.ackInput(bytes.byteLength);
      // Said once until input is taken again: one message per refused frame could fill a peer that does not read.
      if (this.refusingInput) return;
      this.refusingInput = true;
      this.control({
        type: "error",
        error: {
          code: "payload_too_large",
          message: `the shell has not read ${this.pendingInput} bytes of input yet; ${bytes.byteLength} more were dropped`,
          details: { limit_bytes: this.maxPendingInput },
        },
      });
      return;
    }
    this.refusingInput = false;
    this.pendingInput += bytes.byteLength;
    this.term.write(bytes);
  }

  resize(cols: number, rows: number): void {
    if (!this.ended) this.term.resize(cols, rows);
  }

  /** The peer passed `bytes` of output on. */
  ack(bytes: number): void {
    this.unacked = Math.max(0, this.unacked - bytes);
    this.checkFlow();
  }

  /** Bun wrote what input it held to the PTY: the peer learns how much. */
  private inputTaken(): void {
    const bytes = this.pendingInput;
    this.pendingInput = 0;
    this.ackInput(bytes);
  }

  /** Input taken or refused, acknowledged once per turn of the event loop (Bun drains after each write). */
  private ackInput(bytes: number): void {
    this.unackedInput += bytes;
    if (this.unackedInput === 0 || this.inputAckScheduled) return;
    this.inputAckScheduled = true;
    queueMicrotask(() => {
      this.inputAckScheduled = false;
      const n = this.unackedInput;
      this.unackedInput = 0;
      if (n > 0) this.control({ type: "input_ack", bytes: n });
    });
  }

  /** The socket's send buffer drained. */
  drained(): void {
    this.checkFlow();
  }

  /** A control message to the peer (text frame). */
  control(message: Record<string, unknown>): void {
    this.socket?.send(JSON.stringify(message));
  }

  /**
   * The client went away (or nobody attached in time): hang up like a real
   * terminal. Closing the PTY sends SIGHUP to the shell's session; whatever
   * ignores it is killed after a grace.
   */
  hangup(): void {
    this.socket = null;
    if (this.ended) return;
    this.flow?.start();
    this.term.close();
    signalSession(this.proc.pid, "SIGHUP");
    const timer = setTimeout(() => {
      signalSession(this.proc.pid, "SIGKILL");
    }, HANGUP_GRACE_MS);
    timer.unref?.();
    void this.done.finally(() => clearTimeout(timer));
  }

  /** Kills the shell's whole session at once (Ship shutdown). */
  kill(): void {
    this.flow?.start();
    signalSession(this.proc.pid, "SIGKILL");
    this.term.close();
  }

  private output(bytes: Uint8Array): void {
    if (this.stopped && !this.flow) {
      this.dropped += bytes.byteLength;
      return;
    }
    if (!this.socket) {
      this.early.push(bytes.slice());
      this.earlyBytes += bytes.byteLength;
      this.checkFlow();
      return;
    }
    this.send(bytes);
    this.checkFlow();
  }

  private send(bytes: Uint8Array): void {
    if (!this.socket) return;
    this.unacked += bytes.byteLength;
    this.socket.send(bytes);
  }

  private checkFlow(): void {
    const buffered = this.socket?.getBufferedAmount() ?? 0;
    const over = this.socket ? this.unacked > this.windowBytes || buffered > this.windowBytes : this.earlyBytes > UNATTACHED_BYTES;
    if (over && !this.stopped) {
      this.stopped = true;
      // Without kernel flow control, `stopped` makes output() drop instead.
      if (this.flow && !this.flow.stop()) this.flow = null;
    } else if (!over && this.stopped) {
      this.stopped = false;
      this.flow?.start();
      if (this.dropped > 0) {
        this.control({ type: "dropped", bytes: this.dropped });
        this.dropped = 0;
      }
    }
  }

  private async finish(): Promise<TerminalExit> {
    // The rest of the output is still in the PTY: read it (unless it is stopped for a slow reader).
    const deadline = Date.now() + DRAIN_GRACE_MS;
    while (!this.ptyEnded && !this.stopped && Date.now() < deadline) await Bun.sleep(20);
    this.ended = true;
    this.flow?.start();
    signalSession(this.proc.pid, "SIGKILL");
    this.term.close();
    this.sendExit();
    return this.exitInfo();
  }

  private exitInfo(): TerminalExit {
    return { exit_code: this.proc.exitCode, signal: signalName(this.proc.signalCode) };
  }

  private sendExit(): void {
    const ws = this.socket;
    if (!ws) return;
    const info = this.exitInfo();
    ws.send(JSON.stringify({ type: "exit", ...info }));
    ws.close(1000, JSON.stringify(info));
    this.socket = null;
  }
}
