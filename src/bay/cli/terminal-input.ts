/**
 * The input half of `bay sandbox shell`: what is typed or piped in goes to Bay's
 * terminal socket no faster than the shell takes it (InputWindow) and than the
 * socket sends it. Piped input is read only as it is sent (the pipe waits for
 * us). Typed input is read all the time, so `Enter ~ .` ends the session at once
 * whatever the shell does: what the shell has not taken waits here, up to
 * MAX_TYPED_QUEUE, past which typing is dropped until all that waited has gone
 * (one cut each time the bound is reached, not holes all along: review s111) and
 * said so once. What waits is kept in pieces of up to 64 KiB (and never more than
 * the window), however small the reads (a byte at a time cost ~100 B each).
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
/** Looking again while the socket drains or the window is not told yet; while only the told window is full, acknowledgements say when. */
const RETRY_MS = 10;
const WINDOW_RETRY_MS = 250;
const MAX_TYPED_QUEUE = 16 * 1024 * 1024;
const PIECE = 64 * 1024;

/** Input waiting to be sent: `bytes[0, length)`; a piece this made has room to append to. */
interface Waiting {
  bytes: Uint8Array;
  length: number;
  appendable: boolean;
}

export class TerminalInput {
  private readonly queue: Waiting[] = [];
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
        // What came before `~.` goes at once when nothing waits (the session then ends, and what waits with it).
        if (this.escapes?.escaped && this.queue.length === 0) {
          if (bytes.length > 0) this.ws.send(bytes);
          return this.escaped();
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
    while (this.queue.length > 0 && this.open && this.ws.bufferedAmount <= SEND_PAUSE_AT && this.window.fits(this.queue[0]!.length)) {
      const { bytes, length } = this.queue.shift()!;
      this.queued -= length;
      this.ws.send(length === bytes.byteLength ? bytes : bytes.subarray(0, length));
      this.window.sent(length);
    }
    if (this.queue.length === 0 || !this.open) {
      this.dropping = false;
      for (const wake of this.emptied.splice(0)) wake();
      return;
    }
    // The socket drains and the window's wait runs out without telling: look again soon. A told window
    // that is full makes room by acknowledgements, which flush: the timer only notices a closed socket.
    const windowBound = this.window.known && this.ws.bufferedAmount <= SEND_PAUSE_AT;
    this.retry = setTimeout(() => this.flush(), windowBound ? WINDOW_RETRY_MS : RETRY_MS);
    this.retry.unref?.();
  }

  private get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  private enqueue(bytes: Uint8Array): void {
    const max = this.opts.maxTypedQueue ?? MAX_TYPED_QUEUE;
    const n = bytes.byteLength;
    if (this.escapes && (this.dropping || this.queued + n > max)) {
      if (!this.dropping) this.note(`bay: the shell is not reading its input; typed input past ${max >> 20} MiB waiting was dropped`);
      this.dropping = true;
      return;
    }
    this.queued += n;
    const last = this.queue.at(-1);
    // A piece never grows past the window: it would have to go alone, past it (review s112).
    const room = last?.appendable ? Math.min(last.bytes.byteLength, this.window.limit) - last.length : 0;
    if (last?.appendable && room >= n) {
      last.bytes.set(bytes, last.length);
      last.length += n;
    } else if (this.queue.length > 0 && n < PIECE) {
      // Small reads while something waits go into pieces of their own making.
      const piece = new Uint8Array(PIECE);
      piece.set(bytes);
      this.queue.push({ bytes: piece, length: n, appendable: true });
    } else this.queue.push({ bytes, length: n, appendable: false });
  }

  /** Resolves once nothing waits here (or the socket closed). */
  private sent(): Promise<void> {
    if (this.queue.length === 0 || !this.open) return Promise.resolve();
    return new Promise((resolve) => this.emptied.push(resolve));
  }
}
