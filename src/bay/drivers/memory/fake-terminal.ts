/**
 * Terminals of the in-memory fake Ship: no PTY, a line editor in front of the
 * fake shell, speaking Ship's terminal protocol (binary frames of terminal bytes,
 * JSON control messages, the exit status in the close frame). Typed characters
 * are echoed, Enter runs the line (`exit [n]` ends the terminal with n), Ctrl-C
 * aborts the running command or the line, backspace erases. What it cannot do
 * (a real TTY: `stty`, full-screen programs, job control) fails as any
 * unsupported command of the fake shell does, naming the fake.
 */
import type { ServerWebSocket } from "bun";
import { BayError } from "../../errors.ts";
import { runShell, type ShellHost } from "./fake-shell.ts";

/** Terminals at once, as Ship's SHIP_MAX_TERMINALS default. */
const MAX_TERMINALS = 8;
const PROMPT = "ship@fake:~$ ";
/** A terminal nobody attaches to within this is hung up (Ship's SHIP_TERMINAL_ATTACH_SECONDS default). */
const ATTACH_MS = 30_000;

/** What a terminal's socket carries as its `data`. */
export interface TerminalSocketData {
  terminal: FakeTerminal;
  /** Ship's proof of Bay's nonce, sent as the first frame. */
  proof: string | null;
}

export class FakeTerminal {
  cols: number;
  rows: number;
  claimed = false;
  private socket: ServerWebSocket<TerminalSocketData> | null = null;
  private line = "";
  private pending = "";
  private running: AbortController | null = null;
  private over = false;

  constructor(
    private readonly host: ShellHost,
    private readonly alive: AbortSignal,
    size: { cols: number; rows: number },
    private readonly onEnd: () => void,
  ) {
    this.cols = size.cols;
    this.rows = size.rows;
  }

  attach(ws: ServerWebSocket<TerminalSocketData>): void {
    this.socket = ws;
    this.write(PROMPT);
  }

  /** Bytes typed by the client. */
  input(bytes: Uint8Array): void {
    this.pending += new TextDecoder().decode(bytes);
    if (this.running && this.pending.includes("\x03")) {
      this.pending = this.pending.slice(this.pending.lastIndexOf("\x03") + 1);
      this.running.abort();
    }
    void this.drain();
  }

  /** A text frame: resize or ack; anything else is answered with an error message. */
  control(text: string): void {
    let msg: { type?: unknown; cols?: unknown; rows?: unknown; bytes?: unknown } | null = null;
    try {
      msg = JSON.parse(text);
    } catch {
      msg = null;
    }
    const dim = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 1000;
    if (msg?.type === "resize" && dim(msg.cols) && dim(msg.rows)) {
      this.cols = msg.cols as number;
      this.rows = msg.rows as number;
    } else if (!(msg?.type === "ack" && typeof msg.bytes === "number")) {
      this.send(
        JSON.stringify({
          type: "error",
          error: {
            code: "validation_error",
            message: "a text frame must be a JSON control message: resize {cols, rows} or ack {bytes}",
            details: {},
          },
        }),
      );
    }
  }

  /** The client went away: the running command ends with it. */
  hangup(): void {
    this.socket = null;
    this.running?.abort();
    this.end();
  }

  private async drain(): Promise<void> {
    while (!this.running && !this.over && this.pending.length > 0) {
      const ch = this.pending[0]!;
      this.pending = this.pending.slice(1);
      if (ch === "\r" || ch === "\n") {
        this.write("\r\n");
        const line = this.line;
        this.line = "";
        await this.run(line);
      } else if (ch === "\x03") {
        this.line = "";
        this.write(`^C\r\n${PROMPT}`);
      } else if (ch === "\x7f" || ch === "\b") {
        if (this.line.length > 0) {
          this.line = this.line.slice(0, -1);
          this.write("\b \b");
        }
      } else if (ch >= " " || ch === "\t") {
        this.line += ch;
        this.write(ch);
      }
    }
  }

  private async run(line: string): Promise<void> {
    const exit = /^\s*exit(?:\s+(\d+))?\s*$/.exec(line);
    if (exit) {
      this.finish(Number(exit[1] ?? 0) & 255);
      return;
    }
    if (line.trim() !== "") {
      const abort = new AbortController();
      this.running = abort;
      const env = { TERM: "xterm-256color", COLUMNS: String(this.cols), LINES: String(this.rows) };
      const r = await runShell(this.host, line, ".", env, AbortSignal.any([abort.signal, this.alive])).catch(() => null);
      this.running = null;
      if (abort.signal.aborted) this.write("^C\r\n");
      else if (r) this.write((r.stdout + r.stderr).replaceAll("\n", "\r\n"));
    }
    if (!this.over) this.write(PROMPT);
  }

  private finish(code: number): void {
    const info = { exit_code: code, signal: null };
    this.send(JSON.stringify({ type: "exit", ...info }));
    this.socket?.close(1000, JSON.stringify(info));
    this.socket = null;
    this.end();
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    this.onEnd();
  }

  private write(text: string): void {
    this.send(new TextEncoder().encode(text));
  }

  private send(data: string | Uint8Array): void {
    this.socket?.send(data);
  }
}

/** The fake Ship's terminals: created by POST, attached once, forgotten when they end. */
export class FakeTerminals {
  private readonly terminals = new Map<string, FakeTerminal>();

  constructor(
    private readonly host: ShellHost,
    private readonly alive: AbortSignal,
  ) {}

  create(size: { cols: number; rows: number }): string {
    if (this.terminals.size >= MAX_TERMINALS) {
      throw new BayError("quota_exceeded", `too many terminals (max ${MAX_TERMINALS})`, {
        details: { limit: MAX_TERMINALS, running: this.terminals.size },
      });
    }
    const id = `term-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const terminal = new FakeTerminal(this.host, this.alive, size, () => this.terminals.delete(id));
    this.terminals.set(id, terminal);
    // Like Ship: a terminal nobody attaches to is hung up.
    const timer = setTimeout(() => {
      if (!terminal.claimed) terminal.hangup();
    }, ATTACH_MS);
    timer.unref?.();
    return id;
  }

  /** A terminal nobody attached to yet: 404 unknown or ended, 409 taken. */
  unclaimed(id: string): FakeTerminal {
    const t = this.terminals.get(id);
    if (!t) throw new BayError("not_found", `terminal not found: ${id}`, { details: { terminal_id: id } });
    if (t.claimed) throw new BayError("conflict", `terminal ${id} is already attached`, { details: { terminal_id: id } });
    return t;
  }
}
