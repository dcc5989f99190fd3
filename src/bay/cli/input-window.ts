/**
 * How much terminal input `bay sandbox shell` may have in flight before the shell
 * has taken what went before (`?input_acks=true`: terminal-bridge.ts). Once Bay
 * tells the window, input waits while sending more would pass it, so a file
 * piped in goes no faster than the shell reads it and none of it is refused.
 * Until Bay tells it, `first` bytes may go; a Bay or a runtime that never tells
 * it (an older one) is taken as not counting once `waitMs` passed in a wait, and
 * input then goes as before.
 */
export interface InputWindowOptions {
  /** Bytes in flight before Bay has told the window. */
  first: number;
  /** How long a wait for the window lasts before input is no longer counted. */
  waitMs: number;
  now?: () => number;
}

export class InputWindow {
  private window: number | null = null;
  private unacked = 0;
  private waitingSince: number | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: InputWindowOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Bay's `input_acks`: the window (only the first one counts; a nonsense one is not counted). */
  told(window: unknown): void {
    if (this.window !== null) return;
    this.window = typeof window === "number" && Number.isSafeInteger(window) && window > 0 ? window : Number.POSITIVE_INFINITY;
  }

  /** Bay's `input_ack`: the shell took (or refused) `bytes` more. */
  acked(bytes: unknown): void {
    if (typeof bytes === "number" && Number.isSafeInteger(bytes) && bytes > 0) this.unacked = Math.max(0, this.unacked - bytes);
  }

  /** Whether Bay told the window (then only its acknowledgements make room). */
  get known(): boolean {
    return this.window !== null;
  }

  /** The most that may be in flight now: the told window, or the first allowance until it is told. */
  get limit(): number {
    return this.window ?? this.opts.first;
  }

  sent(bytes: number): void {
    this.unacked += bytes;
  }

  /** Whether `size` more bytes may be sent now (one larger than the window goes alone). */
  fits(size: number): boolean {
    const limit = this.window ?? this.opts.first;
    if (this.unacked === 0 || this.unacked + size <= limit) {
      this.waitingSince = null;
      return true;
    }
    if (this.window === null) {
      this.waitingSince ??= this.now();
      if (this.now() - this.waitingSince >= this.opts.waitMs) {
        this.window = Number.POSITIVE_INFINITY;
        return true;
      }
    }
    return false;
  }
}
