/**
 * The JS kernel's requests, run one at a time in the order they came. Written with
 * `await` only (promises.ts) and a chain of the queue's own nodes, not an array: a
 * cell's `Promise.prototype.then` or `Array.prototype.shift` cannot stop the queue.
 */
interface Node<T> {
  item: T;
  next: Node<T> | null;
}

export class SerialQueue<T> {
  private head: Node<T> | null = null;
  private tail: Node<T> | null = null;
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
    // Own data properties only, set in the literal: no setter a cell puts on Object.prototype runs.
    const node: Node<T> = { item, next: null };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.draining ??= this.drain();
  }

  /** Resolves once nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    await undefined;
    for (let node = this.take(); node !== null; node = this.take()) {
      try {
        await this.run(node.item);
      } catch (err) {
        this.failed(node.item, err);
      }
    }
    this.draining = null;
  }

  private take(): Node<T> | null {
    const node = this.head;
    if (node) {
      this.head = node.next;
      if (!this.head) this.tail = null;
    }
    return node;
  }
}
