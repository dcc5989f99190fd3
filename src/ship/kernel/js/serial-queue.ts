/**
 * The JS kernel's requests, run one at a time in the order they came, with `await`
 * only (promises.ts): a cell's `Promise.prototype.then` cannot stop the queue.
 */
export class SerialQueue<T> {
  private readonly waiting: T[] = [];
  private draining: Promise<void> | null = null;

  /** `failed` is called with what `run` threw; it must not throw itself. */
  constructor(
    private readonly run: (item: T) => Promise<void>,
    private readonly failed: (item: T, err: unknown) => void,
  ) {}

  /**
   * Queues `item`. Running starts from the next microtask, so the rest of a chunk of
   * requests is read first (an interrupt sent with its cell finds it queued).
   */
  push(item: T): void {
    this.waiting.push(item);
    this.draining ??= this.drain();
  }

  /** Resolves once nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    await undefined;
    for (let item = this.waiting.shift(); item !== undefined; item = this.waiting.shift()) {
      try {
        await this.run(item);
      } catch (err) {
        this.failed(item, err);
      }
    }
    this.draining = null;
  }
}
