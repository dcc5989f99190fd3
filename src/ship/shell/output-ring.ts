/**
 * A background process's output, kept for readers that attach late or come back
 * after a disconnect. Every byte the process writes (stdout and stderr, in the
 * order they were read) gets an offset in one sequence that starts at 0 and only
 * grows. Only the newest `capacity` bytes are kept: once the ring wraps, the
 * oldest bytes are dropped and `start` moves on, but offsets keep their meaning,
 * so a reader that fell behind learns exactly which range it missed.
 */

export type OutputStream = "stdout" | "stderr";

/** A run of bytes from one stream, at its offset in the process's output. */
export interface OutputChunk {
  stream: OutputStream;
  offset: number;
  bytes: Uint8Array;
}

/** What a read from `offset` found. */
export interface RingRead {
  /** Where the returned bytes start: `offset`, or the oldest kept byte when it was dropped. */
  from: number;
  /** Bytes between the requested offset and `from` that were dropped before this read. */
  skipped: number;
  chunks: OutputChunk[];
  /** Where the next read continues. */
  next: number;
}

export class OutputRing {
  private readonly chunks: OutputChunk[] = [];
  /** Offset of the oldest byte still kept. */
  private first = 0;
  /** Offset the next byte will get (bytes written so far). */
  private end = 0;
  private waiters: Array<() => void> = [];
  private ended = false;

  constructor(private readonly capacity: number) {}

  /** The oldest offset still readable. */
  get start(): number {
    return this.first;
  }

  /** Total bytes written (also the offset the next byte gets). */
  get length(): number {
    return this.end;
  }

  /** True once `close()` was called: nothing more will be written. */
  get closed(): boolean {
    return this.ended;
  }

  /** Readers waiting for output right now. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Bytes dropped because the ring wrapped. */
  get dropped(): number {
    return this.first;
  }

  /** Appends what a stream produced; the oldest bytes go once over capacity. */
  push(stream: OutputStream, bytes: Uint8Array): void {
    if (this.ended || bytes.byteLength === 0) return;
    const last = this.chunks[this.chunks.length - 1];
    if (last && last.stream === stream && last.offset + last.bytes.byteLength === this.end && last.bytes.byteLength < 16 * 1024) {
      // Coalesce small reads of one stream so the chunk list stays short.
      const merged = new Uint8Array(last.bytes.byteLength + bytes.byteLength);
      merged.set(last.bytes);
      merged.set(bytes, last.bytes.byteLength);
      last.bytes = merged;
    } else {
      this.chunks.push({ stream, offset: this.end, bytes: bytes.slice() });
    }
    this.end += bytes.byteLength;
    this.evict();
    this.wake();
  }

  /** No more output will come (the process's pipes closed). */
  close(): void {
    this.ended = true;
    this.wake();
  }

  /**
   * Reads from `offset` (at most `maxBytes`). An offset below `start` reads from
   * `start` and reports the gap as `skipped`; an offset past the end is the
   * caller's error (it cannot have seen such an offset).
   */
  read(offset: number, maxBytes = Number.MAX_SAFE_INTEGER): RingRead {
    const from = Math.max(offset, this.first);
    const out: OutputChunk[] = [];
    let budget = maxBytes;
    let next = from;
    for (const chunk of this.chunks) {
      const chunkEnd = chunk.offset + chunk.bytes.byteLength;
      if (chunkEnd <= next) continue;
      if (budget <= 0) break;
      const startIn = next - chunk.offset;
      const take = Math.min(chunk.bytes.byteLength - startIn, budget);
      out.push({ stream: chunk.stream, offset: next, bytes: chunk.bytes.subarray(startIn, startIn + take) });
      next += take;
      budget -= take;
    }
    return { from, skipped: from - offset, chunks: out, next };
  }

  /**
   * Resolves when there is output at or after `offset`, the ring is closed, or
   * `signal` aborts. Never holds data: a waiter only learns that it may read.
   */
  waitFor(offset: number, signal?: AbortSignal): Promise<void> {
    if (this.end > offset || this.ended || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener("abort", done);
        // A reader that left must not stay listed until the next output (a silent process may never write again).
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      this.waiters.push(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** The kept bytes of one stream, in order (for the process detail's `output` / `error`). */
  streamBytes(stream: OutputStream): Uint8Array {
    const parts = this.chunks.filter((c) => c.stream === stream).map((c) => c.bytes);
    return Buffer.concat(parts);
  }

  private evict(): void {
    const target = this.end - this.capacity;
    if (target <= this.first) return;
    while (this.chunks.length > 0) {
      const head = this.chunks[0]!;
      const headEnd = head.offset + head.bytes.byteLength;
      if (headEnd <= target) {
        this.chunks.shift();
        continue;
      }
      if (head.offset < target) {
        // Copy the kept tail so the dropped head's memory is released.
        head.bytes = head.bytes.slice(target - head.offset);
        head.offset = target;
      }
      break;
    }
    this.first = target;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
