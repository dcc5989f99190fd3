/** Collects bytes up to a cap and counts what it had to drop. */
export class CappedBuffer {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;
  /** True once any byte was dropped. */
  truncated = false;

  constructor(private readonly cap: number) {}

  /** Keeps what fits under the cap; the rest is dropped. */
  push(chunk: Uint8Array): void {
    const room = this.cap - this.size;
    if (chunk.byteLength > room) {
      this.truncated = true;
      if (room <= 0) return;
      chunk = chunk.subarray(0, room);
    }
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
  }

  /** The kept bytes as UTF-8 text (invalid sequences replaced). */
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/**
 * Reads a stream to its end into a CappedBuffer. Reading continues past the cap so
 * a writer producing gigabytes never blocks on a full pipe, and memory stays bounded.
 * Resolves when the stream ends or `stop` is aborted.
 */
export async function drainInto(stream: ReadableStream<Uint8Array>, buffer: CappedBuffer, stop?: AbortSignal): Promise<void> {
  const reader = stream.getReader();
  const onAbort = () => void reader.cancel().catch(() => {});
  stop?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer.push(value);
    }
  } catch {
    // Cancelled or broken pipe: what was read is kept.
  } finally {
    stop?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}
