/**
 * One file watch (one SSE stream): a directory, recursive or not, whose changes go
 * to a bounded queue (watch-queue.ts). A recursive watch walks what comes in
 * below it, by descriptor, never through a symlink.
 */
import { closeSync, type Dirent, openSync, readdirSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { AT_DIR, closeAll, fdPath, gone, MAX_PATH, openChild, openExact, openHolder } from "./dir-open.ts";
import { InotifyError } from "./inotify.ts";
import { WaitingWalks, type Walk, type WalkOutcome } from "./waiting-walks.ts";
import { type FsChange, type HubSubscriber, isUnder, type WatchHub } from "./watch-hub.ts";
import { type WatchItem, WatchQueue } from "./watch-queue.ts";

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

const listDir = (dir: string): Dirent[] => readdirSync(dir, { withFileTypes: true });

/** One directory of a walk: its descriptor, its watch, its path, the subdirectories of it left to walk, when it was listed (DirWatcher.walkSeq). */
interface Frame {
  fd: number;
  wd: number;
  path: string;
  dirs: string[];
  listed: number;
}

/**
 * Which directory a walk leaves alone: one this watch holds, known at its path (`unlessHeld`);
 * one this watch walked after the listing numbered `walkedAfter` named it (a walk's rest).
 */
interface Skip {
  unlessHeld?: boolean;
  walkedAfter?: number;
}

export class DirWatcher implements HubSubscriber {
  private readonly queue: WatchQueue;
  private readonly wds = new Set<number>();
  private rootWd = -1;
  /** Directories changes asked to walk, walked at the end of a poll (flush): waiting-walks.ts. */
  private readonly toWalk = new WaitingWalks(MAX_WAITING_WALKS);
  /** Listings so far, and the number of each held directory's last (a rest skips what was walked after its listing). */
  private walkSeq = 0;
  private readonly walkedAt = new Map<number, number>();

  constructor(private readonly opts: DirWatcherOptions) {
    this.queue = new WatchQueue(opts.queueMax);
  }

  /** Puts the watches in place (the whole tree when recursive). Throws InotifyError when the root cannot be watched. */
  start(): void {
    this.rootWd = this.opts.hub.add(this.opts.root, this);
    this.wds.add(this.rootWd);
    if (this.opts.recursive) this.addTree(this.opts.root, false);
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
    for (const wd of this.wds) this.opts.hub.remove(wd, this);
    this.wds.clear();
    this.walkedAt.clear();
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
    return this.toWalk.run(
      deadline,
      first,
      (walk) => this.walkWaiting(walk, deadline),
      () => this.queue.lost("walk_backlog"),
    );
  }

  /**
   * One waiting walk: a directory, or the rest of a walk cut short (its names), in the watch
   * `wd`'s directory. Each is opened through that holding directory, checked to be the
   * watched one: when it is not there yet as the hub knows it (a move above it not read yet,
   * or half read), whatever is at the old place now is not it ("behind").
   */
  private walkWaiting({ wd, name, unlessHeld, rest, since }: Walk, deadline: number): WalkOutcome {
    // Where its holding directory is now; nowhere once that went (moved out, deleted).
    const holder = this.opts.hub.pathOf(wd);
    const id = this.opts.hub.dirId(wd);
    if (holder === undefined || id === undefined) return "done";
    const names = rest ?? [name];
    const dir = openHolder(holder, id);
    if (dir === "behind") return "behind";
    try {
      for (let next = names.pop(); next !== undefined; next = names.pop()) {
        const path = join(holder, next);
        let fd: number | null = null;
        try {
          if (this.covers(path)) fd = openChild(dir, next);
        } catch (e) {
          const code = (e as { code?: unknown }).code;
          if (rest && (code === "EACCES" || code === "EPERM")) {
            // The holding directory may not be entered (its mode changed): none of its names
            // can be now. They wait, as for a holder not where the hub says yet (20 polls at most).
            names.push(next);
            return "behind";
          }
          this.refused(e, path, dir);
        }
        // A rest's names were listed, not walked: each is walked unless walked since (a held one's
        // contents were never reported as part of this walk); a single walk skips what is held.
        if (fd !== null) this.addTree(path, true, rest ? { walkedAfter: since ?? 0 } : { unlessHeld }, fd, deadline);
        if (names.length > 0 && performance.now() >= deadline) return "more";
      }
      return "done";
    } finally {
      closeSync(dir);
    }
  }

  onOverflow(): void {
    this.queue.lost("kernel_overflow");
  }

  onGone(wd: number): void {
    this.wds.delete(wd);
    this.walkedAt.delete(wd);
    if (wd === this.rootWd) this.end();
  }

  onSelfMoved(wd: number): void {
    if (wd === this.rootWd) this.end();
  }

  /**
   * A directory this watch could not watch may be readable now: walked again, what it holds
   * reported as created; past `deadline` the rest of it waits for the next polls (walkOn).
   */
  onRetry(dir: string, deadline = Number.POSITIVE_INFINITY, at?: { wd: number; name: string }): "absent" | undefined {
    if (!this.opts.recursive || !this.covers(dir)) return undefined;
    // Past the budget (other retries this poll took it): walked in turn with the other walks.
    if (at && performance.now() >= deadline) {
      this.walkLater(at, true);
      return undefined;
    }
    // Already held (walked since, by a move or a creation): nothing to walk twice.
    return this.addTree(dir, true, { unlessHeld: true }, undefined, deadline) ? undefined : "absent";
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
    const ws = this.opts.workspace;
    // Every path here is absolute and under the workspace: its tail is what it is relative to it.
    if (path.length > ws.length + 1 && path.startsWith(ws) && path[ws.length] === "/" && ws !== "/") return path.slice(ws.length + 1);
    return relative(ws, path) || ".";
  }

  /**
   * Watches every directory under `dir`; `report` emits `created` for what is found.
   * The walk holds each directory by a descriptor and opens what is below it through
   * that descriptor, never following a symlink: a directory swapped for a symlink
   * while it is walked cannot lead the walk outside (review s62). At most one
   * descriptor per level is open. False when `dir` is not there to walk (gone, or no
   * longer that directory). `skip`: nothing is walked when the directory at `dir` (by its
   * inode) is one this watch holds already and the hub knows at `dir` (`unlessHeld`), or one
   * this watch walked after the listing `walkedAfter` (a walk's rest).
   * `opened`: `dir` opened already (AT_DIR), the walk's to close. Past `deadline` (a walk
   * at the end of a poll) what is left waits for the next polls (walkOn).
   */
  private addTree(dir: string, report: boolean, skip: Skip = {}, opened?: number, deadline = Number.POSITIVE_INFINITY): boolean {
    let first: number | null = opened ?? null;
    if (opened === undefined) {
      try {
        first = openExact(dir);
      } catch (e) {
        this.refused(e, dir, null);
        return true;
      }
    }
    if (first === null) return false;
    const frames: Frame[] = [];
    try {
      if (this.enter(dir, first, report, frames, skip)) this.walkOn(frames, report, deadline);
    } finally {
      closeAll(frames.splice(0).map((f) => f.fd));
    }
    return true;
  }

  /**
   * Walks on below the directories on `frames`. A walk that reports (not a watch's first)
   * stops past `deadline`: the subdirectories of each open directory it has not walked yet
   * then wait as that directory's rest (WaitingWalks.addRest), one waiting walk however
   * many, served in turn with the others at the next polls' ends. Each is walked only where
   * the watch knows its holding directory to be (walkWaiting: a move meanwhile is followed),
   * and not when the watch walked it after that listing (by a move or a creation meanwhile):
   * no descriptor is kept open between polls, and no one walk holds a poll longer than one
   * directory's listing.
   */
  private walkOn(frames: Frame[], report: boolean, deadline: number): void {
    while (frames.length > 0) {
      if (report && performance.now() >= deadline) {
        for (const f of frames)
          if (f.dirs.length > 0 && !this.toWalk.addRest(f.wd, f.dirs.splice(0), f.listed)) this.queue.lost("walk_backlog");
        this.opts.hub.walkSoon(this);
        return;
      }
      const top = frames[frames.length - 1]!;
      const name = top.dirs.pop();
      if (name === undefined) {
        frames.pop();
        closeSync(top.fd);
        continue;
      }
      let fd: number;
      try {
        fd = openSync(`${fdPath(top.fd)}/${name}`, AT_DIR);
      } catch (e) {
        // Gone meanwhile, or no longer a directory (a symlink now); anything else (a directory
        // that may be listed but not entered, no descriptor left) is told once, as a refused watch is.
        if (!gone(e, true)) this.refused(e, join(top.path, name), top.fd);
        continue;
      }
      if (!this.enter(join(top.path, name), fd, report, frames)) return;
    }
  }

  /**
   * Watches the directory `fd` holds (as `path`) and lists it, reporting what it
   * holds when `report`; its subdirectories are then left to walk on `frames`.
   * False when the walk must stop (the watch limit); `fd` is closed unless kept.
   */
  private enter(path: string, fd: number, report: boolean, frames: Frame[], skip: Skip = {}): boolean {
    if (path.length > MAX_PATH) {
      closeSync(fd);
      this.queue.dropOnce("unwatchable");
      return true;
    }
    let wd = this.rootWd;
    if (path !== this.opts.root) {
      if (this.wds.size >= this.opts.maxDirs) {
        closeSync(fd);
        this.queue.dropOnce("watch_limit");
        return false;
      }
      try {
        // The inode's own watch: the same one whenever it is watched already (IN_MASK_ADD).
        // Held, and known at this path: what is below it is known where it is too. Held
        // under a stale path: walked, so each watch below is found again by its inode.
        const { wd: added, known } = this.opts.hub.addAt(path, this, fdPath(fd));
        const held = this.wds.has(added);
        const walked = held ? (this.walkedAt.get(added) ?? 0) : 0;
        if ((skip.unlessHeld && known && held) || (skip.walkedAfter !== undefined && walked > skip.walkedAfter)) {
          closeSync(fd);
          return true;
        }
        this.wds.add(added);
        wd = added;
      } catch (e) {
        closeSync(fd);
        if (e instanceof InotifyError && e.code === "ENOSPC") {
          this.queue.dropOnce("watch_limit");
          return false;
        }
        if (e instanceof InotifyError && gone(e)) return true; // gone meanwhile
        // Any other refusal (a directory the runtime's user may not read, EACCES): its contents
        // cannot be listed or watched by that user; the rest of the tree is, and the reader is told once.
        if (e instanceof InotifyError) {
          const top = frames[frames.length - 1];
          this.refused(e, path, top?.path === dirname(path) ? top.fd : null);
          return true;
        }
        throw e;
      }
    }
    let entries: Dirent[];
    try {
      entries = (this.opts.list ?? listDir)(fdPath(fd));
    } catch (e) {
      closeSync(fd);
      if (gone(e)) return true;
      // Watched but not listed (its mode changed under the walk, no descriptor left): not held
      // as if walked, but refused, so the reader is told and it is walked again once it may be.
      if (wd !== this.rootWd) {
        this.wds.delete(wd);
        this.walkedAt.delete(wd);
        this.opts.hub.remove(wd, this);
      }
      const top = frames[frames.length - 1];
      this.refused(e, path, top?.path === dirname(path) ? top.fd : null);
      return true;
    }
    // On the walk (and closed by it) before anything else can throw.
    const dirs: string[] = [];
    const listed = ++this.walkSeq;
    this.walkedAt.set(wd, listed);
    frames.push({ fd, wd, path, dirs, listed });
    for (const entry of entries) {
      if (report) this.queue.push({ kind: "change", type: "created", path: this.rel(join(path, entry.name)), is_dir: entry.isDirectory() });
      if (entry.isDirectory()) dirs.push(entry.name);
    }
    return true;
  }

  /**
   * The directory at `path` could not be watched or walked: told once (dropOnce). When its
   * user may not read it, or enter the directory holding it, it is kept to walk again once
   * an attribute change there may have opened it (WatchHub.refuse). `holderFd`: the holding
   * directory's descriptor on the walk, or null to open it here.
   */
  private refused(e: unknown, path: string, holderFd: number | null): void {
    this.queue.dropOnce("unwatchable");
    const code = (e as { code?: unknown }).code;
    if (code !== "EACCES" && code !== "EPERM") return;
    let fd = holderFd;
    if (fd === null) {
      try {
        fd = openExact(dirname(path));
      } catch {
        return;
      }
      if (fd === null) return;
    }
    try {
      this.opts.hub.refuse(fdPath(fd), basename(path), this);
    } finally {
      if (holderFd === null) closeSync(fd);
    }
  }
}
