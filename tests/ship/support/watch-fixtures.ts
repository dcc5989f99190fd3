/** What the hand-polled watch tests share: temporary directories and hubs closed after each test, and a watcher's queue read out. */
import { afterEach } from "bun:test";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DirWatcher, WatchItem } from "../../../src/ship/watch/dir-watcher.ts";
import type { WatchHub } from "../../../src/ship/watch/watch-hub.ts";

const dirs: string[] = [];
/** Hubs a test made: closed after it. */
export const hubs: WatchHub[] = [];
afterEach(() => {
  for (const h of hubs.splice(0)) h.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temporary directory (its real path), removed after the test. */
export function temp(prefix = "bay-watch-"): string {
  const d = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  dirs.push(d);
  return d;
}

/** Everything a watcher's queue holds now. */
export function drain(w: DirWatcher): WatchItem[] {
  const out: WatchItem[] = [];
  for (let item = w.take(); item; item = w.take()) out.push(item);
  return out;
}
