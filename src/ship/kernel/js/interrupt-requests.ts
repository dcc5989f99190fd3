/**
 * Ship's interrupt requests (`{"interrupt": id}` on the kernel's stdin): which cell each
 * one stops, and when. Ship names the cell it waits on, which may still be queued here
 * (a timeout of a few milliseconds, a streaming client gone at once, or the request read
 * in the same chunk as its cell): such a cell is answered as interrupted when its turn
 * comes, without running. A request for any other cell (one already answered) is late
 * and changes nothing.
 */
export class InterruptRequests {
  private readonly waiting = new Set<number>();
  private readonly stoppedEarly = new Set<number>();

  /** Cell `id` was queued. */
  queued(id: number): void {
    this.waiting.add(id);
  }

  /** A request to stop `id`: true if that is the running cell, which the caller stops now. */
  request(id: number, running: number | undefined): boolean {
    if (running === id) return true;
    if (this.waiting.has(id)) this.stoppedEarly.add(id);
    return false;
  }

  /** Cell `id` starts: whether a request stopped it before then (it must not run). */
  starting(id: number): boolean {
    this.waiting.delete(id);
    return this.stoppedEarly.delete(id);
  }
}
