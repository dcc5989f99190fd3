/**
 * The JS kernel's cells, one after another. Chained on the kernel's own `then` (a cell
 * may replace Promise.prototype.then), and no link is ever resolved with a promise:
 * that would look up the public `then` again.
 */
import { KernelPromise, kernelThen } from "./intrinsics.ts";

export class SerialQueue {
  private tail: Promise<void> = KernelPromise.resolve();

  /** Runs `task` once every task pushed before it has settled; `onError` gets its rejection. */
  push(task: () => Promise<void>, onError: (err: unknown) => void): void {
    const previous = this.tail;
    this.tail = new KernelPromise<void>((done) => {
      kernelThen(previous, () => {
        kernelThen(
          task(),
          () => done(),
          (err) => {
            done();
            onError(err);
          },
        );
      });
    });
  }

  /** Settles once every task pushed so far has. */
  get drained(): Promise<void> {
    return this.tail;
  }
}
