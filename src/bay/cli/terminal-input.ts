/**
 * The input half of `bay sandbox shell`: what is typed or piped in goes to Bay's
 * terminal socket no faster than the shell takes it (InputWindow) and than the
 * socket sends it. Piped input is read only as it is sent (the pipe waits for
 * us). Typed input is read all the time, so `Enter ~ .` ends the session at once
 * whatever the shell does: what the shell has not taken waits here, up to
 * MAX_TYPED_QUEUE, past which further typing is dropped and said so (review s110).
 * Once input ends, a Ctrl-D goes, again every second until the shell is gone: one
 * is not always enough (typed ahead while a command runs, the terminal's line
 * discipline can drop it before the shell reads again).
 */
import type { InputWindow } from "./input-window.ts";
import type { EscapeFilter } from "./terminal-local.ts";

/** The socket, as the input needs it (a browser-style WebSocket). */
export interface InputSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(): void;
}

export interface TerminalInputOptions {
  /** Typed input held for a shell that does not take it before more is dropped (default MAX_TYPED_QUEUE). */
  maxTypedQueue?: number;
}

/** End of input in the sandbox's shell, once piped input ends. */
const CTRL_D = new Uint8Array([4]);
const EOF_REPEAT_MS = 1000;
/** Nothing more goes to the socket while more than this waits in it (a Bay or a link that is slow). */
const SEND_PAUSE_AT = 1024 * 1024;
const RETRY_MS = 10;
const MAX_TYPED_QUEUE = 16 * 1024 * 1024;

export class TerminalInput {
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private emptied: Array<() => void> = [];
  /** Typed input is being dropped; the note was given once. */
  private dropping = false;

  constructor(
    private readonly ws: InputSocket,
    private readonly window: InputWindow,
    /** The escape filter when input is typed at a terminal; null for piped input. */
    private readonly escapes: EscapeFilter | null,
    private readonly escaped: () => void,
    private readonly note: (text: string) => void,
    private readonly opts: TerminalInputOptions = {},
  ) {}

  /** Reads `input` until it ends (then Ctrl-D until the shell is gone), the escape, or the session's end. */
  async run(input: AsyncIterable<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of input) {
        const bytes = this.escapes ? this.escapes.filter(chunk) : chunk;
        if (!this.open) {
          // Bay closed; its last output may still be being written to a slow terminal: `~.` ends that too (review s109).
          if (!this.escapes) return;
          if (this.escapes.escaped) return this.escaped();
          continue;
        }
        if (bytes.length > 0) this.enqueue(bytes);
        this.flush();
        if (this.escapes?.escaped) return this.escaped();
        // Piped input is read no further until what was read has gone.
        if (!this.escapes) await this.sent();
      }
    } catch {
      // The input failed (a closed terminal): the shell is hung up when the socket goes.
      this.ws.close();
      return;
    }
    await this.sent();
    const eof = () => {
      if (this.open) this.ws.send(CTRL_D);
      else clearInterval(again);
    };
    const again = setInterval(eof, EOF_REPEAT_MS);
    again.unref?.();
    eof();
  }

  /** Sends what waits, as far as the socket and the window allow; tries again soon if something is left. */
  flush(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    while (this.queue.length > 0 && this.open && this.ws.bufferedAmount <= SEND_PAUSE_AT && this.window.fits(this.queue[0]!.byteLength)) {
      const bytes = this.queue.shift()!;
      this.queued -= bytes.byteLength;
      this.ws.send(bytes);
      this.window.sent(bytes.byteLength);
    }
    if (this.queue.length === 0 || !this.open) {
      this.dropping = false;
      for (const wake of this.emptied.splice(0)) wake();
      return;
    }
    // The socket drains and the window's wait runs out without telling: look again soon.
    this.retry = setTimeout(() => this.flush(), RETRY_MS);
    this.retry.unref?.();
  }

  private get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  private enqueue(bytes: Uint8Array): void {
    const max = this.opts.maxTypedQueue ?? MAX_TYPED_QUEUE;
    if (this.escapes && this.queued + bytes.byteLength > max) {
      if (!this.dropping) this.note(`bay: the shell is not reading its input; typed input past ${max >> 20} MiB waiting was dropped`);
      this.dropping = true;
      return;
    }
    this.queue.push(bytes);
    this.queued += bytes.byteLength;
  }

  /** Resolves once nothing waits here (or the socket closed). */
  private sent(): Promise<void> {
    if (this.queue.length === 0 || !this.open) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }
}
