/**
 * Directories a recursive watch met but could not watch (the sandbox's user may
 * not read them, or may not enter the directory holding them), each kept as the
 * watch of the directory that holds it and its name there: a watch follows its
 * directory through renames, a path would not. The hub listens for attribute
 * changes in those holding directories only; one on a refused directory's name,
 * or on the holding directory itself, makes the entry due, and a due entry is
 * handed back to its watchers to walk again (WatchHub.poll).
 *
 * Bounded: at most MAX_ENTRIES entries (one past that stays refused, as before),
 * an entry is retried at most once per RETRY_SPACING_MS, and at most
 * MAX_RETRIES_PER_TAKE are handed back at once, so a sandbox that storms the
 * attributes of a directory it locked costs its runtime a bounded share of a poll.
 */

/** Entries one hub keeps. */
export const MAX_ENTRIES = 1024;
/** An entry made (or remade by a retry that failed) is not retried sooner than this. */
export const RETRY_SPACING_MS = 250;
/** Entries handed back by one take. */
export const MAX_RETRIES_PER_TAKE = 64;

interface Entry<S> {
  subs: Set<S>;
  due: boolean;
  notBefore: number;
}

/** One refused directory to walk again: its holding directory's watch, its name there, and who wants it. */
export interface Retry<S> {
  wd: number;
  name: string;
  subs: Set<S>;
}

export class RefusedDirs<S> {
  private readonly byWd = new Map<number, Map<string, Entry<S>>>();
  private count = 0;
  private anyDue = false;

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.count;
  }

  /** No entry more may be made. */
  get full(): boolean {
    return this.count >= MAX_ENTRIES;
  }

  /** Whether `name` in the directory of watch `wd` is refused by anyone. */
  has(wd: number, name: string): boolean {
    return this.byWd.get(wd)?.has(name) === true;
  }

  /** Records that `sub` could not watch `name` in the directory of watch `wd`. False when full. */
  record(wd: number, name: string, sub: S): boolean {
    const entry = this.entryAt(wd, name);
    entry?.subs.add(sub);
    return entry !== undefined;
  }

  /** The entry for `name` in the directory of watch `wd`, made (not due, spaced out from now) if none; undefined when full. */
  private entryAt(wd: number, name: string): Entry<S> | undefined {
    let names = this.byWd.get(wd);
    const entry = names?.get(name);
    if (entry) return entry;
    if (this.count >= MAX_ENTRIES) return undefined;
    if (!names) {
      names = new Map();
      this.byWd.set(wd, names);
    }
    const made: Entry<S> = { subs: new Set(), due: false, notBefore: this.now() + RETRY_SPACING_MS };
    names.set(name, made);
    this.count++;
    return made;
  }

  /** An attribute changed on `name` in the directory of watch `wd` (`""`: on that directory itself, which may open all of them). */
  attributeChanged(wd: number, name: string): void {
    const names = this.byWd.get(wd);
    if (!names) return;
    if (name === "") {
      for (const entry of names.values()) entry.due = true;
      this.anyDue = names.size > 0 || this.anyDue;
      return;
    }
    const entry = names.get(name);
    if (entry) {
      entry.due = true;
      this.anyDue = true;
    }
  }

  /** `name` left the directory of watch `wd` (deleted, or moved: a move in the watched trees is walked where it lands). */
  forgetName(wd: number, name: string): void {
    const names = this.byWd.get(wd);
    if (names?.delete(name)) {
      this.count--;
      if (names.size === 0) this.byWd.delete(wd);
    }
  }

  /**
   * `name` was moved to `toName` in the directory of watch `toWd` (another watched one, or
   * the same): its entry follows it, due at once. Walked again there, it is watched if it
   * may be read now, and refused again (held where it is now) if not.
   */
  moved(wd: number, name: string, toWd: number, toName: string): void {
    const names = this.byWd.get(wd);
    const entry = names?.get(name);
    if (!names || !entry) return;
    this.forgetName(wd, name);
    const moved = this.entryAt(toWd, toName);
    if (!moved) return;
    for (const sub of entry.subs) moved.subs.add(sub);
    moved.due = true;
    this.anyDue = true;
  }

  /** The directory of watch `wd` is no longer watched. */
  forgetWd(wd: number): void {
    const names = this.byWd.get(wd);
    if (!names) return;
    this.count -= names.size;
    this.byWd.delete(wd);
  }

  /** `sub` ended. */
  forgetSub(sub: S): void {
    for (const [wd, names] of this.byWd) {
      for (const [name, entry] of names) {
        entry.subs.delete(sub);
        if (entry.subs.size === 0) {
          names.delete(name);
          this.count--;
        }
      }
      if (names.size === 0) this.byWd.delete(wd);
    }
  }

  /** Takes the entries due now (at most MAX_RETRIES_PER_TAKE); a due one not yet spaced out stays for a later take. */
  takeDue(): Retry<S>[] {
    if (!this.anyDue) return [];
    const now = this.now();
    const out: Retry<S>[] = [];
    let waiting = false;
    for (const [wd, names] of this.byWd) {
      for (const [name, entry] of names) {
        if (!entry.due) continue;
        if (entry.notBefore > now || out.length >= MAX_RETRIES_PER_TAKE) {
          waiting = true;
          continue;
        }
        names.delete(name);
        this.count--;
        out.push({ wd, name, subs: entry.subs });
      }
      if (names.size === 0) this.byWd.delete(wd);
    }
    this.anyDue = waiting;
    return out;
  }

  clear(): void {
    this.byWd.clear();
    this.count = 0;
    this.anyDue = false;
  }
}
