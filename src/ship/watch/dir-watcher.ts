/**
 * One file watch (one SSE stream): a directory, recursive or not, its changes
 * in a bounded queue. A burst larger than the queue is not kept: the queue
 * counts what it dropped and reports it as one `dropped` item once the reader
 * catches up. Consecutive modifications of one path are reported once.
 */
import { readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { InotifyError } from "./inotify.ts";
import { type FsChange, type HubSubscriber, isUnder, type WatchHub } from "./watch-hub.ts";

/** What a watch reports, paths relative to the workspace. */
export type WatchItem =
  | { kind: "change"; type: FsChange["type"]; path: string; is_dir: boolean; old_path?: string }
  | { kind: "dropped"; count: number | null; reason: "queue_full" | "kernel_overflow" | "watch_limit" | "unwatchable" }
  | { kind: "gone" };

export interface DirWatcherOptions {
  hub: WatchHub;
  /** Real path of the workspace root (paths are reported relative to it). */
  workspace: string;
  /** Real path of the watched directory. */
  root: string;
  recursive: boolean;
  /** Changes the queue holds for a slow reader. */
  queueMax: number;
  /** Directories one recursive watch may cover. */
  maxDirs: number;
}

const ENOSPC = 28;
const ENOENT = 2;
const ENOTDIR = 20;

export class DirWatcher implements HubSubscriber {
  private readonly queue: WatchItem[] = [];
  private readonly wds = new Set<number>();
  private rootWd = -1;
  private droppedFull = 0;
  private droppedKernel = false;
  /** The reasons a dropOnce was sent for. */
  private readonly partial = new Set<"watch_limit" | "unwatchable">();
  private gone = false;
  private wake: (() => void) | null = null;

  constructor(private readonly opts: DirWatcherOptions) {}

  /** Puts the watches in place (the whole tree when recursive). Throws InotifyError when the root cannot be watched. */
  start(): void {
    this.rootWd = this.opts.hub.add(this.opts.root, this);
    this.wds.add(this.rootWd);
    if (this.opts.recursive) this.addTree(this.opts.root, false);
  }

  /** The next item; waits while there is none. Resolves `gone` forever once the root went away. */
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

  /** Releases every watch. */
  close(): void {
    for (const wd of this.wds) this.opts.hub.remove(wd, this);
    this.wds.clear();
  }

  onChange(change: FsChange): void {
    const oldIn = change.old_path !== undefined && this.covers(change.old_path);
    const newIn = this.covers(change.path);
    if (change.type === "renamed") {
      if (oldIn && newIn)
        this.push({
          kind: "change",
          type: "renamed",
          path: this.rel(change.path),
          old_path: this.rel(change.old_path!),
          is_dir: change.is_dir,
        });
      else if (newIn) this.push({ kind: "change", type: "created", path: this.rel(change.path), is_dir: change.is_dir });
      else if (oldIn) this.push({ kind: "change", type: "deleted", path: this.rel(change.old_path!), is_dir: change.is_dir });
    } else if (newIn) {
      this.push({ kind: "change", type: change.type, path: this.rel(change.path), is_dir: change.is_dir });
    }
    // A directory that appeared in a recursive watch is watched too, and what it
    // already holds (made before its watch existed) is reported as created.
    if (this.opts.recursive && change.is_dir && newIn && (change.type === "created" || (change.type === "renamed" && !oldIn))) {
      this.addTree(change.path, true);
    }
  }

  onOverflow(): void {
    this.droppedKernel = true;
    this.notify();
  }

  onGone(wd: number): void {
    this.wds.delete(wd);
    if (wd === this.rootWd) this.end();
  }

  onSelfMoved(wd: number): void {
    if (wd === this.rootWd) this.end();
  }

  private end(): void {
    this.gone = true;
    this.notify();
  }

  /** Whether a path is one this watch reports on. */
  private covers(path: string): boolean {
    if (this.gone) return false;
    return this.opts.recursive ? isUnder(path, this.opts.root) && path !== this.opts.root : dirname(path) === this.opts.root;
  }

  private rel(path: string): string {
    return relative(this.opts.workspace, path) || ".";
  }

  /** Watches every directory under `dir` (symlinks are never followed); `report` emits `created` for what is found. */
  private addTree(dir: string, report: boolean): void {
    const stack = [dir];
    while (stack.length > 0) {
      const current = stack.pop()!;
      if (current !== this.opts.root) {
        if (this.wds.size >= this.opts.maxDirs) {
          this.dropOnce("watch_limit");
          return;
        }
        try {
          this.wds.add(this.opts.hub.add(current, this));
        } catch (e) {
          if (e instanceof InotifyError && e.errno === ENOSPC) {
            this.dropOnce("watch_limit");
            return;
          }
          if (e instanceof InotifyError && (e.errno === ENOENT || e.errno === ENOTDIR)) continue; // gone meanwhile
          // Any other refusal (a directory the runtime's user may not read, EACCES): its contents
          // cannot be listed or watched by that user; the rest of the tree is, and the reader is told once.
          if (e instanceof InotifyError) {
            this.dropOnce("unwatchable");
            continue;
          }
          throw e;
        }
      }
      let entries: import("node:fs").Dirent[];
      try {
        entries = readdirSync(current, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const entry of entries) {
        const path = join(current, entry.name);
        if (report) this.push({ kind: "change", type: "created", path: this.rel(path), is_dir: entry.isDirectory() });
        if (entry.isDirectory()) stack.push(path);
      }
    }
  }

  /**
   * A recursive watch that will not report everything under it, said once per reason:
   * more directories than it may cover (`watch_limit`), or one it could not watch
   * (`unwatchable`: its user may not read it; what happens inside is not seen).
   */
  private dropOnce(reason: "watch_limit" | "unwatchable"): void {
    if (this.partial.has(reason)) return;
    this.partial.add(reason);
    this.queue.push({ kind: "dropped", count: null, reason });
    this.notify();
  }

  private push(item: WatchItem): void {
    if (this.gone) return;
    const last = this.queue[this.queue.length - 1];
    if (
      item.kind === "change" &&
      item.type === "modified" &&
      last?.kind === "change" &&
      last.type === "modified" &&
      last.path === item.path
    )
      return;
    if (this.queue.length >= this.opts.queueMax) {
      this.droppedFull++;
      return;
    }
    if (this.droppedFull > 0) {
      // The loss is reported where it happened: before the first change kept after it.
      this.queue.push({ kind: "dropped", count: this.droppedFull, reason: "queue_full" });
      this.droppedFull = 0;
    }
    this.queue.push(item);
    this.notify();
  }

  private take(): WatchItem | null {
    // What was lost is reported before what follows it.
    if (this.droppedKernel) {
      this.droppedKernel = false;
      return { kind: "dropped", count: null, reason: "kernel_overflow" };
    }
    const item = this.queue.shift();
    if (item) return item;
    if (this.droppedFull > 0) {
      const count = this.droppedFull;
      this.droppedFull = 0;
      return { kind: "dropped", count, reason: "queue_full" };
    }
    return this.gone ? { kind: "gone" } : null;
  }

  private notify(): void {
    this.wake?.();
  }
}
