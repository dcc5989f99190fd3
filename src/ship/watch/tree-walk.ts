/**
 * The directories one recursive file watch holds, and how it walks them: by descriptor,
 * never through a symlink, each walk cut short at its poll's budget with what it has not
 * walked left to wait (waiting-walks.ts). dir-watcher.ts decides what to walk and when.
 */
import { closeSync, type Dirent, readdirSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { closeAll, fdPath, gone, MAX_PATH, openChild, openExact, openHolder } from "./dir-open.ts";
import { InotifyError } from "./inotify.ts";
import type { WaitingWalks, Walk, WalkOutcome } from "./waiting-walks.ts";
import type { HubSubscriber, WatchHub } from "./watch-hub.ts";
import type { WatchQueue } from "./watch-queue.ts";

export interface TreeWalkOptions {
  hub: WatchHub;
  /** The watch the hub's watches are for. */
  owner: HubSubscriber;
  /** Real path of the workspace root (paths are reported relative to it). */
  workspace: string;
  /** Real path of the watched directory. */
  root: string;
  /** Directories the watch may cover. */
  maxDirs: number;
  /** Lists a directory given as a path (default: readdirSync with file types). */
  list?: (dir: string) => Dirent[];
  /** Where what is found goes. */
  queue: WatchQueue;
  /** Where the rest of a walk cut short waits. */
  rests: Pick<WaitingWalks, "addRest">;
  /** Whether a path is one the watch reports on. */
  covers: (path: string) => boolean;
}

/**
 * Which directory a walk leaves alone: one this watch holds, known at its path (`unlessHeld`);
 * one this watch walked after the listing numbered `walkedAfter` named it (a walk's rest).
 */
export interface Skip {
  unlessHeld?: boolean;
  walkedAfter?: number;
}

/** One directory of a walk: its descriptor, its watch, its path, the subdirectories of it left to walk, when it was listed (walkSeq). */
interface Frame {
  fd: number;
  wd: number;
  path: string;
  dirs: string[];
  listed: number;
}

const listDir = (dir: string): Dirent[] => readdirSync(dir, { withFileTypes: true });

/** `path` (absolute, under the workspace `ws`) as a client names it: relative to the workspace. */
export function workspacePath(ws: string, path: string): string {
  // Its tail is what it is relative to the workspace.
  if (path.length > ws.length + 1 && path.startsWith(ws) && path[ws.length] === "/" && ws !== "/") return path.slice(ws.length + 1);
  return relative(ws, path) || ".";
}

export class TreeWalk {
  /** The watches this watch holds, its root's first. */
  private readonly wds = new Set<number>();
  private rootWd = -1;
  /** Listings so far, and the number of each held directory's last (a rest skips what was walked after its listing). */
  private walkSeq = 0;
  private readonly walkedAt = new Map<number, number>();

  constructor(private readonly opts: TreeWalkOptions) {}

  /** Holds the watched directory's own watch. */
  holdRoot(wd: number): void {
    this.rootWd = wd;
    this.wds.add(wd);
  }

  isRoot(wd: number): boolean {
    return wd === this.rootWd;
  }

  /** A held directory's watch went (the hub dropped it). */
  forget(wd: number): void {
    this.wds.delete(wd);
    this.walkedAt.delete(wd);
  }

  /** Releases every watch held. */
  release(): void {
    for (const wd of this.wds) this.opts.hub.remove(wd, this.opts.owner);
    this.wds.clear();
    this.walkedAt.clear();
  }

  /**
   * One waiting walk: a directory, or the rest of a walk cut short (its names), in the watch
   * `wd`'s directory. Each is opened through that holding directory, checked to be the
   * watched one: when it is not there yet as the hub knows it (a move above it not read yet,
   * or half read), whatever is at the old place now is not it ("behind").
   */
  walkWaiting({ wd, name, unlessHeld, rest, since }: Walk, deadline: number): WalkOutcome {
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
          if (this.opts.covers(path)) fd = openChild(dir, next);
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
  addTree(dir: string, report: boolean, skip: Skip = {}, opened?: number, deadline = Number.POSITIVE_INFINITY): boolean {
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
          if (f.dirs.length > 0 && !this.opts.rests.addRest(f.wd, f.dirs.splice(0), f.listed)) this.opts.queue.lost("walk_backlog");
        this.opts.hub.walkSoon(this.opts.owner);
        return;
      }
      const top = frames[frames.length - 1]!;
      const name = top.dirs.pop();
      if (name === undefined) {
        frames.pop();
        closeSync(top.fd);
        continue;
      }
      let fd: number | null;
      try {
        fd = openChild(top.fd, name);
      } catch (e) {
        // A directory that may be listed but not entered, no descriptor left: told once, as a refused watch is.
        this.refused(e, join(top.path, name), top.fd);
        continue;
      }
      // Gone meanwhile, or no longer a directory (a symlink now): nothing to walk.
      if (fd !== null && !this.enter(join(top.path, name), fd, report, frames)) return;
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
      this.opts.queue.dropOnce("unwatchable");
      return true;
    }
    let wd = this.rootWd;
    if (path !== this.opts.root) {
      if (this.wds.size >= this.opts.maxDirs) {
        closeSync(fd);
        this.opts.queue.dropOnce("watch_limit");
        return false;
      }
      try {
        // The inode's own watch: the same one whenever it is watched already (IN_MASK_ADD).
        // Held, and known at this path: what is below it is known where it is too. Held
        // under a stale path: walked, so each watch below is found again by its inode.
        const { wd: added, known } = this.opts.hub.addAt(path, this.opts.owner, fdPath(fd));
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
          this.opts.queue.dropOnce("watch_limit");
          return false;
        }
        if (e instanceof InotifyError && gone(e)) return true; // gone meanwhile
        // Any other refusal (a directory the runtime's user may not read, EACCES): its contents
        // cannot be listed or watched by that user; the rest of the tree is, and the reader is told once.
        if (e instanceof InotifyError) {
          this.refused(e, path, this.holderOnWalk(path, frames));
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
        this.forget(wd);
        this.opts.hub.remove(wd, this.opts.owner);
      }
      this.refused(e, path, this.holderOnWalk(path, frames));
      return true;
    }
    // On the walk (and closed by it) before anything else can throw.
    const dirs: string[] = [];
    const listed = ++this.walkSeq;
    this.walkedAt.set(wd, listed);
    frames.push({ fd, wd, path, dirs, listed });
    for (const entry of entries) {
      if (report)
        this.opts.queue.push({
          kind: "change",
          type: "created",
          path: workspacePath(this.opts.workspace, join(path, entry.name)),
          is_dir: entry.isDirectory(),
        });
      if (entry.isDirectory()) dirs.push(entry.name);
    }
    return true;
  }

  /** The descriptor of the directory holding `path` when the walk has it open, else null. */
  private holderOnWalk(path: string, frames: Frame[]): number | null {
    const top = frames[frames.length - 1];
    return top?.path === dirname(path) ? top.fd : null;
  }

  /**
   * The directory at `path` could not be watched or walked: told once (dropOnce). When its
   * user may not read it, or enter the directory holding it, it is kept to walk again once
   * an attribute change there may have opened it (WatchHub.refuse). `holderFd`: the holding
   * directory's descriptor on the walk, or null to open it here.
   */
  private refused(e: unknown, path: string, holderFd: number | null): void {
    this.opts.queue.dropOnce("unwatchable");
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
      this.opts.hub.refuse(fdPath(fd), basename(path), this.opts.owner);
    } finally {
      if (holderFd === null) closeSync(fd);
    }
  }
}
