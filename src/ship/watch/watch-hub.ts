/**
 * One inotify instance for all of Ship's file watches. inotify instances are
 * counted per uid across the whole host (128 by default) and every sandbox runs
 * as uid 1000, so a Ship takes at most one. The hub owns the watch descriptors
 * (one per directory, shared by every watcher that covers it), keeps each one's
 * current path (a renamed directory's watch follows it), pairs the two halves
 * of a rename, and hands each change to the watchers of the directories it
 * happened in.
 */
import { join } from "node:path";
import { dirIdAt } from "./dir-open.ts";
import { FlushRotation, type Flushing } from "./flush-rotation.ts";
import { IN, Inotify, InotifyError, type RawEvent } from "./inotify.ts";
import { type MoveVisitor, pairMoves } from "./move-pairs.ts";
import { PathIndex, type PathNode } from "./path-index.ts";
import { RefusedDirs } from "./refused-dirs.ts";

/** A change, with absolute paths. */
export interface FsChange {
  type: "created" | "modified" | "deleted" | "renamed";
  path: string;
  is_dir: boolean;
  /** For `renamed`: where it was. */
  old_path?: string;
  /**
   * For `created` and `renamed`: where the entry is as the hub holds it, the watch of the
   * directory holding it and its name there (that watch follows its directory's moves).
   */
  at?: { wd: number; name: string };
}

/** A watcher as the hub sees it. */
export interface HubSubscriber extends Flushing {
  onChange(change: FsChange): void;
  /** The kernel's queue overflowed: events were lost. */
  onOverflow(): void;
  /** A watched directory went away (deleted, moved out of the watched trees): its watch is dropped. */
  onGone(wd: number): void;
  /** A watched directory itself was moved (its own watch follows it). */
  onSelfMoved(wd: number): void;
  /**
   * A directory this subscriber could not watch (refuse), `at` the name `name` in the watch
   * `wd`'s directory, may be readable now: walk it again, past `deadline` (performance.now())
   * leaving it, or the rest of it, for later polls; "absent" when nothing is there to walk.
   */
  onRetry?(dir: string, deadline: number, at: { wd: number; name: string }): "absent" | undefined;
  // flush (Flushing): the end of a poll, for a subscriber that asked (walkSoon), its walks within the poll's budget.
}

interface Watch {
  /** Where its directory is (index.pathOf): it follows the moves of the directories above it. */
  node: PathNode | null;
  subscribers: Set<HubSubscriber>;
  /** Its directory (device and inode), to tell whether it is still where the hub says. */
  id: string;
}

const MASK =
  IN.CREATE |
  IN.DELETE |
  IN.MODIFY |
  IN.MOVED_FROM |
  IN.MOVED_TO |
  IN.DELETE_SELF |
  IN.MOVE_SELF |
  IN.ONLYDIR |
  IN.DONT_FOLLOW |
  IN.EXCL_UNLINK;
const POLL_MS = 50;
/** Events one poll reads (and a read's worth more): a storm is read this fast, and what it queues past the kernel's queue is reported lost. */
const EVENTS_PER_POLL = 4096;
/** What the subscribers' left work (flush) may take of one poll, in ms: a storm of moves waits, exec calls do not. */
const FLUSH_BUDGET_MS = 20;

/** Directories one Ship watches at once (SHIP_WATCH_MAX_TOTAL_DIRS). */
export const DEFAULT_MAX_DIRS = 8192;
const ENOSPC = 28;

export class WatchHub {
  private inotify: Inotify | null = null;
  private readonly watches = new Map<number, Watch>();
  /** Where each watch's directory is now (what is watched where). */
  private readonly index = new PathIndex();
  private timer: ReturnType<typeof setInterval> | null = null;
  /** MOVED_FROMs read last whose MOVED_TO did not come in the same read: paired on the next poll, or moves out. */
  private pendingFrom: RawEvent[] = [];
  private readonly visitor: MoveVisitor = {
    rename: (from, to) => this.rename(from, to),
    movedOut: (from) => this.movedOut(from),
    single: (e) => this.single(e),
  };
  /** Subscribers with work left for the end of a poll (walkSoon). */
  private readonly flushing = new FlushRotation<HubSubscriber>(FLUSH_BUDGET_MS);
  /** Directories watchers could not watch, retried on an attribute change where they are (refused-dirs.ts). */
  private readonly refused = new RefusedDirs<HubSubscriber>();

  /**
   * `maxDirs`: directories this Ship watches at once, all watches together. The host
   * counts inotify watches per uid, and every sandbox's user is the same uid: without a
   * cap of its own, one sandbox's 16 recursive watches held 65,536 of the host's.
   */
  constructor(
    private readonly pollMs = POLL_MS,
    private readonly maxDirs = DEFAULT_MAX_DIRS,
  ) {}

  /**
   * Watches `dir` for `sub`; returns its watch descriptor. Throws InotifyError (ENOSPC:
   * the kernel's or this Ship's watch limit). `opened`: the directory as a descriptor's
   * `/proc/self/fd/N`, watched as the inode that descriptor holds (its link followed),
   * whatever is at `dir` by then.
   */
  add(dir: string, sub: HubSubscriber, opened?: string): number {
    return this.addAt(dir, sub, opened).wd;
  }

  /**
   * As add; `known`: the hub held that watch already, at `dir` (a watch whose path was
   * stale, a directory moved in ways the hub could not follow, is not known there: what
   * is below it may be stale too).
   */
  addAt(dir: string, sub: HubSubscriber, opened?: string): { wd: number; known: boolean } {
    this.inotify ??= new Inotify();
    // IN_MASK_ADD: a directory watched already keeps what its mask has gained (refuse's IN_ATTRIB).
    const wd =
      opened === undefined ? this.inotify.add(dir, MASK | IN.MASK_ADD) : this.inotify.add(opened, (MASK & ~IN.DONT_FOLLOW) | IN.MASK_ADD);
    if (!this.watches.has(wd) && this.watches.size >= this.maxDirs) {
      // A directory nobody here watched yet, past this Ship's share: as if the kernel had said so.
      this.inotify.remove(wd);
      throw new InotifyError("inotify_add_watch", ENOSPC);
    }
    const held = this.watches.get(wd);
    const known = held !== undefined && this.pathOfWatch(held) === dir;
    const w = held ?? { node: null, subscribers: new Set(), id: dirIdAt(opened ?? dir) };
    if (!known) this.setPath(wd, w, dir);
    w.subscribers.add(sub);
    this.watches.set(wd, w);
    this.timer ??= setInterval(() => this.poll(), this.pollMs);
    return { wd, known };
  }

  /**
   * `sub` could not watch the directory `name` in the directory `holder` (a descriptor's
   * `/proc/self/fd/N`, so the very directory it walked), which a watch of this hub covers:
   * that watch now reports attribute changes too, and one on `name`, or on the holding
   * directory itself, hands `name` back to `sub` to walk again (onRetry). Nothing when the
   * holding directory is watched by nobody here, or too many are refused already.
   */
  refuse(holder: string, name: string, sub: HubSubscriber): void {
    if (!this.inotify || this.refused.full) return;
    let wd: number;
    try {
      // The same inode's watch is this hub's own: its mask gains IN_ATTRIB, nothing else changes.
      wd = this.inotify.add(holder, IN.ATTRIB | IN.MASK_ADD | IN.ONLYDIR);
    } catch {
      return;
    }
    if (!this.watches.has(wd)) {
      // A directory nobody here watches (it went, or was never covered): its new watch goes at once.
      this.inotify.remove(wd);
      return;
    }
    this.refused.record(wd, name, sub);
  }

  /** Stops watching `wd` for `sub`; the kernel watch goes when nobody needs it. */
  remove(wd: number, sub: HubSubscriber): void {
    const w = this.watches.get(wd);
    if (!w) return;
    w.subscribers.delete(sub);
    if (w.subscribers.size === 0) {
      this.watches.delete(wd);
      this.unindex(wd, w);
      this.refused.forgetWd(wd);
      this.inotify?.remove(wd);
    }
    this.idle();
  }

  /** `sub` ended: what it could not watch is not retried for it, nor is its left work asked for. */
  forget(sub: HubSubscriber): void {
    this.refused.forgetSub(sub);
    this.flushing.delete(sub);
  }

  /** `sub` has work for the end of this poll (and later ones, until its flush says it is done). */
  walkSoon(sub: HubSubscriber): void {
    this.flushing.add(sub);
  }

  /**
   * The directory `wd` watches (device and inode), to check it is the one at its path:
   * the hub's paths are behind the kernel's until it reads the moves (a read cut short, a
   * move half read), and meanwhile another directory may be at the old place (dir-open.ts openHolder).
   */
  dirId(wd: number): string | undefined {
    return this.watches.get(wd)?.id;
  }

  /** The current path of a watch descriptor. */
  pathOf(wd: number): string | undefined {
    const w = this.watches.get(wd);
    return w ? this.pathOfWatch(w) : undefined;
  }

  /** Reads and dispatches what happened (called by the timer; tests may call it). */
  poll(): void {
    if (!this.inotify) return;
    let read: { events: RawEvent[]; cut: boolean };
    try {
      read = this.inotify.drain(EVENTS_PER_POLL);
    } catch {
      read = { events: [], cut: false };
    }
    this.pendingFrom = pairMoves(this.pendingFrom, read.events, read.cut, this.visitor);
    this.flushing.run();
    this.retryRefused();
  }

  /** Stops everything (Ship shutdown). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.inotify?.close();
    this.inotify = null;
    this.watches.clear();
    this.index.clear();
    this.refused.clear();
    this.flushing.clear();
    this.pendingFrom = [];
  }

  /** Hands each refused directory that may be readable now back to its watchers, under its holder's current path. */
  private retryRefused(): void {
    // The retries' walks share one budget: past it, what is left of them waits for the next polls.
    const deadline = performance.now() + FLUSH_BUDGET_MS;
    for (const { wd, name, subs } of this.refused.takeDue()) {
      const w = this.watches.get(wd);
      // Not there to walk (moved or deleted since the change was read): kept for the events that say where it went.
      if (w)
        tell(
          subs,
          (sub) =>
            sub.onRetry?.(join(this.pathOfWatch(w), name), deadline, { wd, name }) === "absent" && this.refused.record(wd, name, sub),
        );
    }
  }

  private single(e: RawEvent): void {
    if (e.mask & IN.Q_OVERFLOW) {
      tell(this.allSubscribers(), (sub) => sub.onOverflow());
      return;
    }
    const w = this.watches.get(e.wd);
    if (!w) return;
    const isDir = (e.mask & IN.ISDIR) !== 0;
    if (e.mask & IN.ATTRIB) {
      // Only the holders of refused directories report these (refuse).
      if (isDir || e.name === "") this.refused.attributeChanged(e.wd, e.name);
      return;
    }
    if (e.mask & IN.DELETE) this.refused.forgetName(e.wd, e.name);
    if (e.mask & (IN.DELETE_SELF | IN.IGNORED)) {
      this.drop(e.wd, w);
      return;
    }
    if (e.mask & IN.MOVE_SELF) {
      // A move inside the watched trees was already followed (repath); watchers
      // whose own root moved learn it here.
      tell(w.subscribers, (sub) => sub.onSelfMoved(e.wd));
      return;
    }
    const path = join(this.pathOfWatch(w), e.name);
    const type =
      e.mask & IN.CREATE || e.mask & IN.MOVED_TO ? "created" : e.mask & IN.DELETE ? "deleted" : e.mask & IN.MODIFY ? "modified" : null;
    if (!type) return;
    const at = type === "created" ? { wd: e.wd, name: e.name } : undefined;
    tell(w.subscribers, (sub) => sub.onChange({ type, path, is_dir: isDir, at }));
  }

  private rename(from: RawEvent, to: RawEvent): void {
    const a = this.watches.get(from.wd);
    const b = this.watches.get(to.wd);
    if (b) {
      // What was refused at the target's name is gone when a directory known here moved over it
      // (watched, or refused itself). An unknown one may be what a walk refused there already.
      if (this.refused.has(to.wd, to.name) && (this.refused.has(from.wd, from.name) || this.watchedAt(a, from.name))) {
        this.refused.forgetName(to.wd, to.name);
      }
      this.refused.moved(from.wd, from.name, to.wd, to.name);
    } else this.refused.forgetName(from.wd, from.name);
    const isDir = (to.mask & IN.ISDIR) !== 0;
    const oldPath = a ? join(this.pathOfWatch(a), from.name) : null;
    const newPath = b ? join(this.pathOfWatch(b), to.name) : null;
    if (isDir && oldPath && newPath) this.repath(oldPath, newPath);
    // Moved into a directory no longer watched (its watch dropped earlier in this read): as moved out.
    else if (isDir && oldPath) this.dropUnder(oldPath);
    const change: FsChange =
      oldPath && newPath
        ? { type: "renamed", path: newPath, old_path: oldPath, is_dir: isDir, at: { wd: to.wd, name: to.name } }
        : newPath
          ? { type: "created", path: newPath, is_dir: isDir, at: { wd: to.wd, name: to.name } }
          : { type: "deleted", path: oldPath!, is_dir: isDir };
    const subs = new Set([...(a?.subscribers ?? []), ...(b?.subscribers ?? [])]);
    tell(subs, (sub) => sub.onChange(change));
  }

  /** Whether the directory `name` in the watch `holder`'s directory is watched here. */
  private watchedAt(holder: Watch | undefined, name: string): boolean {
    if (!holder) return false;
    return this.index.has(join(this.pathOfWatch(holder), name));
  }

  /** A MOVED_FROM without its MOVED_TO: moved out of every watched directory. */
  private movedOut(from: RawEvent): void {
    this.refused.forgetName(from.wd, from.name);
    const w = this.watches.get(from.wd);
    if (!w) return;
    const path = join(this.pathOfWatch(w), from.name);
    const isDir = (from.mask & IN.ISDIR) !== 0;
    if (isDir) this.dropUnder(path);
    tell(w.subscribers, (sub) => sub.onChange({ type: "deleted", path, is_dir: isDir }));
  }

  /** The watches at `path` and below, whose directory moved out: they still report, under paths nobody knows; dropped (out of the index at once). */
  private dropUnder(path: string): void {
    for (const wd of this.index.take(path)) {
      const w = this.watches.get(wd);
      if (w) this.drop(wd, w, false);
    }
  }

  /** A directory moved inside the watched trees: its watches (and those below) follow it. */
  private repath(oldPath: string, newPath: string): void {
    // One node moves, whatever is below it; only a landing on a path held already re-homes watches.
    for (const [wd, node] of this.index.move(oldPath, newPath)) {
      const w = this.watches.get(wd);
      if (w) w.node = node;
    }
  }

  private pathOfWatch(w: Watch): string {
    return w.node ? this.index.pathOf(w.node) : "";
  }

  private setPath(wd: number, w: Watch, path: string): void {
    this.unindex(wd, w);
    w.node = this.index.add(path, wd);
  }

  private unindex(wd: number, w: Watch): void {
    if (w.node) this.index.delete(w.node, wd);
    w.node = null;
  }

  /** `indexed`: still in the index (false: taken out with its subtree already). */
  private drop(wd: number, w: Watch, indexed = true): void {
    this.watches.delete(wd);
    if (indexed) this.unindex(wd, w);
    this.refused.forgetWd(wd);
    this.inotify?.remove(wd);
    tell(w.subscribers, (sub) => sub.onGone(wd));
    this.idle();
  }

  private idle(): void {
    if (this.watches.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private allSubscribers(): Set<HubSubscriber> {
    const out = new Set<HubSubscriber>();
    for (const w of this.watches.values()) for (const s of w.subscribers) out.add(s);
    return out;
  }
}

/** `path` is `dir` or below it. */
export const isUnder = (path: string, dir: string): boolean => path === dir || path.startsWith(`${dir}/`);

/**
 * Hands an event to each subscriber (over a copy: one may unsubscribe meanwhile). One
 * that throws is logged: the others, and the rest of the poll's events, still get theirs.
 */
function tell(subs: Iterable<HubSubscriber>, fn: (sub: HubSubscriber) => void): void {
  for (const sub of [...subs]) {
    try {
      fn(sub);
    } catch (err) {
      console.error(`[ship] a file watch failed on an event: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
