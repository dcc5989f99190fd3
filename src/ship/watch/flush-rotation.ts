/**
 * The subscribers of the watch hub with work left for the end of a poll (the walks
 * their changes asked for), served within one budget per poll. The one served first
 * goes last at the next poll, so no watch keeps the budget to itself; each gets at
 * least one piece of work once it is served first.
 */

export interface Flushing {
  /**
   * Does left work until `deadline` (performance.now()), and one piece past it when
   * `first`; true when nothing is left, false to be asked again at the next poll.
   */
  flush?(deadline: number, first: boolean): boolean;
}

export class FlushRotation<S extends Flushing> {
  private readonly waiting = new Set<S>();

  /** `budgetMs`: what all the left work together may take of one poll. */
  constructor(private readonly budgetMs: number) {}

  /** `sub` has work for the end of this poll (and later ones, until its flush says it is done). */
  add(sub: S): void {
    this.waiting.add(sub);
  }

  delete(sub: S): void {
    this.waiting.delete(sub);
  }

  clear(): void {
    this.waiting.clear();
  }

  /** Asks each waiting subscriber for its work, within this poll's budget. */
  run(): void {
    if (this.waiting.size === 0) return;
    const deadline = performance.now() + this.budgetMs;
    const order = [...this.waiting];
    // The one served first this poll goes last next poll.
    this.waiting.delete(order[0]!);
    this.waiting.add(order[0]!);
    for (const [i, sub] of order.entries()) {
      let done = false;
      try {
        done = sub.flush?.(deadline, i === 0) ?? true;
      } catch (err) {
        // Asked again next poll for what is left (the piece that threw is not among it).
        console.error(`[ship] a file watch failed on its walks: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (done) this.waiting.delete(sub);
    }
  }
}
