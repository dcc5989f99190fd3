/**
 * Watch descriptors by their directories' paths, in order, so that what lies under a
 * directory is one contiguous run found by binary search: a directory's move or its
 * move out touches the watches below it, not every watch (a rename storm over 8,000
 * watched directories took seconds per poll when each move scanned them all).
 * A path may hold more than one descriptor (a stale path, until the events that say
 * where it went are read).
 */
interface Entry {
  path: string;
  wd: number;
}

const before = (a: Entry, path: string, wd: number): boolean => a.path < path || (a.path === path && a.wd < wd);

export class PathIndex {
  private readonly entries: Entry[] = [];

  get size(): number {
    return this.entries.length;
  }

  add(path: string, wd: number): void {
    const at = this.lowerBound(path, wd);
    const e = this.entries[at];
    if (e && e.path === path && e.wd === wd) return;
    this.entries.splice(at, 0, { path, wd });
  }

  delete(path: string, wd: number): void {
    const at = this.lowerBound(path, wd);
    const e = this.entries[at];
    if (e && e.path === path && e.wd === wd) this.entries.splice(at, 1);
  }

  /** Each descriptor at `dir` or below it (`dir/…`), with its path. */
  under(dir: string): Array<[number, string]> {
    const out: Array<[number, string]> = [];
    for (let i = this.lowerBound(dir, -Infinity); i < this.entries.length && this.entries[i]!.path === dir; i++) {
      out.push([this.entries[i]!.wd, dir]);
    }
    // Every path that starts with `dir/` sorts from `dir/` up to `dir0` ("0" follows "/").
    const end = `${dir}0`;
    for (let i = this.lowerBound(`${dir}/`, -Infinity); i < this.entries.length && this.entries[i]!.path < end; i++) {
      out.push([this.entries[i]!.wd, this.entries[i]!.path]);
    }
    return out;
  }

  clear(): void {
    this.entries.length = 0;
  }

  /** The first place whose entry is not before (path, wd). */
  private lowerBound(path: string, wd: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.entries[mid]!, path, wd)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
