/** What the hand-polled watch tests share: temporary directories and hubs closed after each test, and a watcher's queue read out. */
import { afterEach } from "bun:test";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirWatcher, type DirWatcherOptions, type WatchItem } from "../../../src/ship/watch/dir-watcher.ts";
import { WatchHub } from "../../../src/ship/watch/watch-hub.ts";

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

/** A hub polled by hand (its timer never fires first), closed after the test. */
export function handHub(): WatchHub {
  const hub = new WatchHub(1_000_000);
  hubs.push(hub);
  return hub;
}

/** A watch of `root` on `hub` (reported relative to `root`, recursive, roomy bounds), `opts` over those; not started. */
export function watcherOn(hub: WatchHub, root: string, opts: Partial<DirWatcherOptions> = {}): DirWatcher {
  return new DirWatcher({ hub, workspace: root, root, recursive: true, queueMax: 1_000_000, maxDirs: 100_000, ...opts });
}
