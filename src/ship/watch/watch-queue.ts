/**
 * What one file watch has to tell its reader: changes in a bounded queue, and what
 * was lost. A burst larger than the queue is not kept: the queue counts what it
 * dropped and reports it as one `dropped` item where it happened, once the reader
 * catches up. Consecutive modifications of one path are reported once.
 */
import type { FsChange } from "./watch-hub.ts";

/** What a watch reports, paths relative to the workspace. */
export type WatchItem =
  | { kind: "change"; type: FsChange["type"]; path: string; is_dir: boolean; old_path?: string }
  | { kind: "dropped"; count: number | null; reason: "queue_full" | "kernel_overflow" | "walk_backlog" | "watch_limit" | "unwatchable" }
  | { kind: "gone" };

type Change = Extract<WatchItem, { kind: "change" }>;

export class WatchQueue {
  private readonly items: WatchItem[] = [];
  private droppedFull = 0;
  /** Changes lost by the kernel's queue (it overflowed). */
  private droppedKernel = false;
  /** Changes lost by the walks waiting past their bound. */
  private droppedBacklog = false;
  /** The reasons a dropOnce was sent for. */
  private readonly partial = new Set<"watch_limit" | "unwatchable">();
  private gone = false;
  private wake: (() => void) | null = null;

  constructor(private readonly max: number) {}

  /** Whether the watch ended (its root went): nothing more is queued. */
  get ended(): boolean {
    return this.gone;
  }

  push(item: Change): void {
    if (this.gone) return;
    const last = this.items[this.items.length - 1];
    if (item.type === "modified" && last?.kind === "change" && last.type === "modified" && last.path === item.path) return;
    if (this.items.length >= this.max) {
      this.droppedFull++;
      return;
    }
    if (this.droppedFull > 0) {
      // The loss is reported where it happened: before the first change kept after it.
      this.items.push({ kind: "dropped", count: this.droppedFull, reason: "queue_full" });
      this.droppedFull = 0;
    }
    this.items.push(item);
    this.notify();
  }

  /** Changes were lost, by the kernel's queue or by the walks waiting: told before what follows. */
  lost(reason: "kernel_overflow" | "walk_backlog"): void {
    if (reason === "kernel_overflow") this.droppedKernel = true;
    else this.droppedBacklog = true;
    this.notify();
  }

  /**
   * A watch that will not report everything under it, said once per reason: more
   * directories than it may cover (`watch_limit`), or one it could not watch
   * (`unwatchable`: its user may not read it; what happens inside is not seen).
   */
  dropOnce(reason: "watch_limit" | "unwatchable"): void {
    if (this.partial.has(reason)) return;
    this.partial.add(reason);
    this.items.push({ kind: "dropped", count: null, reason });
    this.notify();
  }

  /** The watch ended: what is queued is still read, then `gone` for ever. */
  end(): void {
    this.gone = true;
    this.notify();
  }

  /** The next item, or null when there is none now. */
  take(): WatchItem | null {
    // What was lost is reported before what follows it.
    if (this.droppedKernel) {
      this.droppedKernel = false;
      return { kind: "dropped", count: null, reason: "kernel_overflow" };
    }
    if (this.droppedBacklog) {
      this.droppedBacklog = false;
      return { kind: "dropped", count: null, reason: "walk_backlog" };
    }
    const item = this.items.shift();
    if (item) return item;
    if (this.droppedFull > 0) {
      const count = this.droppedFull;
      this.droppedFull = 0;
      return { kind: "dropped", count, reason: "queue_full" };
    }
    return this.gone ? { kind: "gone" } : null;
  }

  /** The next item; waits while there is none (null once `signal` aborts). */
  async next(signal: AbortSignal): Promise<WatchItem | null> {
    for (;;) {
      if (signal.aborted) return null;
      const item = this.take();
      if (item) return item;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.wake = null;
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  private notify(): void {
    this.wake?.();
  }
}
