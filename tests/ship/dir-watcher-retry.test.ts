/**
 * A recursive watch that met a directory its user may not read (EACCES) tries it
 * again: once the user may read it (a chmod), it is watched and what it holds is
 * reported as created; one that is gone, or comes anew, is forgotten, and nothing is
 * tried once the watch is closed. Root reads everything, so the refusal comes from
 * a hub that refuses the locked directories as the kernel would for uid 1000 (the
 * real refusal is tests/e2e/interactive-watch.test.ts); the directories are real.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirWatcher, type WatchItem } from "../../src/ship/watch/dir-watcher.ts";
import { InotifyError } from "../../src/ship/watch/inotify.ts";
import type { WatchHub } from "../../src/ship/watch/watch-hub.ts";

const EACCES = 13;
const ENOENT = 2;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A hub that watches nothing for real and refuses what `locked` holds, as the kernel would. */
function lockingHub(locked: Set<string>) {
  const tried: string[] = [];
  let next = 1;
  const hub = {
    add(dir: string) {
      tried.push(dir);
      if (locked.has(dir)) throw new InotifyError("inotify_add_watch", EACCES);
      try {
        require("node:fs").statSync(dir);
      } catch {
        throw new InotifyError("inotify_add_watch", ENOENT);
      }
      return next++;
    },
    remove() {},
  };
  return { hub: hub as unknown as WatchHub, tried };
}

function drain(w: DirWatcher): WatchItem[] {
  const out: WatchItem[] = [];
  for (
    let item = (w as unknown as { take(): WatchItem | null }).take();
    item;
    item = (w as unknown as { take(): WatchItem | null }).take()
  ) {
    out.push(item);
  }
  return out;
}

function tree() {
  const root = mkdtempSync(join(tmpdir(), "bay-watch-retry-"));
  dirs.push(root);
  mkdirSync(join(root, "locked", "deeper"), { recursive: true });
  writeFileSync(join(root, "locked", "inside"), "x");
  writeFileSync(join(root, "locked", "deeper", "note"), "y");
  return root;
}

test("a directory its user may read later is watched then, and what it holds is reported as created", async () => {
  const root = tree();
  const locked = new Set([join(root, "locked")]);
  const { hub, tried } = lockingHub(locked);
  const w = new DirWatcher({ hub, workspace: root, root, recursive: true, queueMax: 100, maxDirs: 100, retryMs: 20 });
  w.start();
  expect(drain(w)).toEqual([{ kind: "dropped", count: null, reason: "unwatchable" }]);
  await Bun.sleep(70);
  // Still locked: tried again, said once.
  expect(tried.filter((d) => d === join(root, "locked")).length).toBeGreaterThan(1);
  expect(drain(w)).toEqual([]);
  locked.clear();
  await Bun.sleep(70);
  expect(drain(w).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
    { kind: "change", type: "created", path: "locked/deeper", is_dir: true },
    { kind: "change", type: "created", path: "locked/deeper/note", is_dir: false },
    { kind: "change", type: "created", path: "locked/inside", is_dir: false },
  ]);
  // Watched now: not tried again, and nothing reported twice.
  const count = tried.length;
  await Bun.sleep(70);
  expect(tried.length).toBe(count);
  expect(drain(w)).toEqual([]);
  w.close();
});

test("a locked directory that is gone, or comes anew, is not tried again; a closed watch tries nothing", async () => {
  const root = tree();
  mkdirSync(join(root, "other"));
  const locked = new Set([join(root, "locked"), join(root, "other")]);
  const { hub, tried } = lockingHub(locked);
  const w = new DirWatcher({ hub, workspace: root, root, recursive: true, queueMax: 100, maxDirs: 100, retryMs: 20 });
  w.start();
  drain(w);
  // Gone: the next try finds nothing there, and it is forgotten.
  rmSync(join(root, "locked"), { recursive: true });
  locked.delete(join(root, "locked"));
  // Come anew, readable (as the hub would say it): watched once, its contents reported once.
  writeFileSync(join(root, "other", "fresh"), "z");
  locked.delete(join(root, "other"));
  w.onChange({ type: "created", path: join(root, "other"), is_dir: true });
  await Bun.sleep(70);
  const count = tried.length;
  await Bun.sleep(70);
  expect(tried.length).toBe(count);
  expect(tried.filter((d) => d === join(root, "other"))).toHaveLength(2);
  expect(drain(w)).toEqual([
    { kind: "change", type: "created", path: "other", is_dir: true },
    { kind: "change", type: "created", path: "other/fresh", is_dir: false },
  ]);

  // A closed watch tries nothing more, even with a locked directory left.
  const again = tree();
  const stillLocked = new Set([join(again, "locked")]);
  const second = lockingHub(stillLocked);
  const closed = new DirWatcher({
    hub: second.hub,
    workspace: again,
    root: again,
    recursive: true,
    queueMax: 100,
    maxDirs: 100,
    retryMs: 20,
  });
  closed.start();
  closed.close();
  const before = second.tried.length;
  await Bun.sleep(70);
  expect(second.tried.length).toBe(before);
});
