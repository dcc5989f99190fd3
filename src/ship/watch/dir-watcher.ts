/**
 * One file watch (one SSE stream): a directory, recursive or not, whose changes go
 * to a bounded queue (watch-queue.ts). A recursive watch walks what comes in
 * below it, by descriptor, never through a symlink.
 */
import { closeSync, type Dirent } from "node:fs";
import { constants as osConstants } from "node:os";
import { dirname } from "node:path";
import { fdPath, isAt, openExact } from "./dir-open.ts";
import { InotifyError } from "./inotify.ts";
import { WaitingWalks } from "./waiting-walks.ts";
import { type FsChange, type HubSubscriber, isUnder, type WatchHub } from "./watch-hub.ts";
import { type WatchItem, WatchQueue } from "./watch-queue.ts";
import { TreeWalk, workspacePath } from "./tree-walk.ts";

export type { WatchItem };

/** Directories one watch keeps waiting to walk; past it they are dropped and the reader told (walk_backlog). */
export const MAX_WAITING_WALKS = 4096;

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
  /** Lists a directory given as a path (default: readdirSync with file types). */
  list?: (dir: string) => Dirent[];
}

/** The watched directory opened (AT_DIR) at exactly `root`; what refused it as an InotifyError, as a watch's own refusal is. */
function openRoot(root: string): number {
  let fd: number | null;
  try {
    fd = openExact(root);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const errno = typeof code === "string" ? (osConstants.errno as Record<string, number>)[code] : undefined;
    if (errno === undefined) throw e;
    throw new InotifyError("open", errno);
  }
  // Gone, or not at that path as a directory (a symlink on the way): as inotify says of a path it cannot follow.
  if (fd === null) throw new InotifyError("open", osConstants.errno.ENOENT);
  return fd;
}

export class DirWatcher implements HubSubscriber {
  private readonly queue: WatchQueue;
  /** Directories changes asked to walk, walked at the end of a poll (flush): waiting-walks.ts. */
  private readonly toWalk = new WaitingWalks(MAX_WAITING_WALKS);
  /** The directories this watch holds, and its walks (tree-walk.ts). */
  private readonly tree: TreeWalk;

  constructor(private readonly opts: DirWatcherOptions) {
    this.queue = new WatchQueue(opts.queueMax);
    this.tree = new TreeWalk({
      hub: opts.hub,
      owner: this,
      workspace: opts.workspace,
      root: opts.root,
      maxDirs: opts.maxDirs,
      list: opts.list,
      queue: this.queue,
      rests: this.toWalk,
      covers: (path) => this.covers(path),
    });
  }

  /**
   * Puts the watches in place (the whole tree when recursive). Throws InotifyError when the
   * root cannot be watched. The root is opened once, only when it is there at exactly its
   * path (no symlink on the way): its watch, its identity and the first walk are all that
   * one directory, whatever is swapped around it meanwhile.
   */
  start(): void {
    const fd = openRoot(this.opts.root);
    try {
      this.tree.holdRoot(this.opts.hub.addAt(this.opts.root, this, fdPath(fd)).wd);
      // Moved between the check and the watch, the watch is where it went, and no move of it
      // would ever be told: looked at again now that the watch is on (any move from here is told, IN_MOVE_SELF).
      if (!isAt(fd, this.opts.root)) {
        this.tree.release();
        throw new InotifyError("open", osConstants.errno.ENOENT);
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    if (this.opts.recursive) this.tree.addTree(this.opts.root, false, {}, fd);
    else closeSync(fd);
  }

  /** The next item; waits while there is none. Resolves `gone` forever once the root went away. */
  next(signal: AbortSignal): Promise<WatchItem | null> {
    return this.queue.next(signal);
  }

  /** The next item, or null when there is none now. */
  take(): WatchItem | null {
    return this.queue.take();
  }

  /** Releases every watch. */
  close(): void {
    this.toWalk.clear();
    this.opts.hub.forget(this);
    this.tree.release();
  }

  onChange(change: FsChange): void {
    const oldIn = change.old_path !== undefined && this.covers(change.old_path);
    const newIn = this.covers(change.path);
    if (change.type === "renamed") {
      if (oldIn && newIn)
        this.queue.push({
          kind: "change",
          type: "renamed",
          path: this.rel(change.path),
          old_path: this.rel(change.old_path!),
          is_dir: change.is_dir,
        });
      else if (newIn) this.queue.push({ kind: "change", type: "created", path: this.rel(change.path), is_dir: change.is_dir });
      else if (oldIn) this.queue.push({ kind: "change", type: "deleted", path: this.rel(change.old_path!), is_dir: change.is_dir });
    } else if (newIn) {
      this.queue.push({ kind: "change", type: change.type, path: this.rel(change.path), is_dir: change.is_dir });
    }
    // A directory that appeared in a recursive watch is watched too, and what it
    // already holds (made before its watch existed) is reported as created. So is one
    // moved inside it unless this watch holds that very directory already (it may have
    // been made and moved before its creation was read, and the walk then found nothing).
    // Both at the end of a poll (or a later one past its budget), once for all the times it came in meanwhile.
    if (!this.opts.recursive || !change.is_dir || !newIn) return;
    if ((change.type === "created" || change.type === "renamed") && change.at)
      this.walkLater(change.at, change.type === "renamed" && oldIn);
  }

  /** Walks what changes asked for (walkLater), until `deadline` (one past it when `first`); false while some are left. */
  flush(deadline: number, first: boolean): boolean {
    try {
      return this.toWalk.run(
        deadline,
        first,
        (walk) => this.tree.walkWaiting(walk, deadline),
        () => this.queue.lost("walk_backlog"),
      );
    } catch (e) {
      // A walk that failed unforeseen lost what it would have reported: the reader is told so
      // (the hub logs the error and asks again for what is left).
      this.queue.lost("walk_backlog");
      throw e;
    }
  }

  onOverflow(): void {
    this.queue.lost("kernel_overflow");
  }

  onGone(wd: number): void {
    this.tree.forget(wd);
    if (this.tree.isRoot(wd)) this.end();
  }

  onSelfMoved(wd: number): void {
    if (this.tree.isRoot(wd)) this.end();
  }

  /**
   * A directory this watch could not watch may be readable now: walked again, what it holds
   * reported as created; past `deadline` the rest of it waits for the next polls (tree-walk.ts).
   */
  onRetry(dir: string, deadline = Number.POSITIVE_INFINITY, at?: { wd: number; name: string }): "absent" | undefined {
    if (!this.opts.recursive || !this.covers(dir)) return undefined;
    // Past the budget (other retries this poll took it): walked in turn with the other walks.
    if (at && performance.now() >= deadline) {
      this.walkLater(at, true);
      return undefined;
    }
    // Already held (walked since, by a move or a creation): nothing to walk twice.
    return this.tree.addTree(dir, true, { unlessHeld: true }, undefined, deadline) ? undefined : "absent";
  }

  /**
   * The directory `name` in the watch `wd`'s directory is walked at the end of a poll
   * (flush). Past MAX_WAITING_WALKS waiting (a storm of new directories outran the walks)
   * they are dropped (WaitingWalks.add): the reader is told that changes were lost, as
   * when the kernel's queue overflows.
   */
  private walkLater(at: { wd: number; name: string }, unlessHeld: boolean): void {
    if (this.toWalk.add(at, unlessHeld)) this.opts.hub.walkSoon(this);
    else this.queue.lost("walk_backlog");
  }

  private end(): void {
    this.toWalk.clear();
    this.queue.end();
  }

  /** Whether a path is one this watch reports on. */
  private covers(path: string): boolean {
    if (this.queue.ended) return false;
    return this.opts.recursive ? isUnder(path, this.opts.root) && path !== this.opts.root : dirname(path) === this.opts.root;
  }

  private rel(path: string): string {
    return workspacePath(this.opts.workspace, path);
  }
}
