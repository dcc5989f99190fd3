/**
 * A recursive watch that met a directory its user may not read (EACCES) watches it
 * once its attributes change and it can be read (a chmod), reporting what it holds
 * as created; only from its real path, only once, and only for a watch that met
 * such a directory. Root reads everything, so the refusal comes from a hub that
 * refuses the locked directories as the kernel would for uid 1000 (the real
 * refusal and the real chmod event are tests/e2e/interactive-watch.test.ts); the
 * directories are real.
 */
import { afterEach, expect, test } from "bun:test";
import { type Dirent, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
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

/** A hub that watches nothing for real (one wd per path) and refuses what `locked` holds, as the kernel would. */
function lockingHub(locked: Set<string>) {
  const tried: string[] = [];
  const removed: number[] = [];
  const wds = new Map<string, number>();
  const hub = {
    add(dir: string) {
      tried.push(dir);
      if (locked.has(dir)) throw new InotifyError("inotify_add_watch", EACCES);
      try {
        statSync(dir);
      } catch {
        throw new InotifyError("inotify_add_watch", ENOENT);
      }
      if (!wds.has(dir)) wds.set(dir, wds.size + 1);
      return wds.get(dir)!;
    },
    remove(wd: number) {
      removed.push(wd);
    },
  };
  return { hub: hub as unknown as WatchHub, tried, removed };
}

const take = (w: DirWatcher) => (w as unknown as { take(): WatchItem | null }).take();
function drain(w: DirWatcher): WatchItem[] {
  const out: WatchItem[] = [];
  for (let item = take(w); item; item = take(w)) out.push(item);
  return out.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

function tree() {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "bay-watch-attrib-")));
  dirs.push(root);
  mkdirSync(join(root, "locked", "deeper"), { recursive: true });
  writeFileSync(join(root, "locked", "inside"), "x");
  writeFileSync(join(root, "locked", "deeper", "note"), "y");
  return root;
}

const watcher = (hub: WatchHub, root: string, recursive = true) =>
  new DirWatcher({ hub, workspace: root, root, recursive, queueMax: 100, maxDirs: 100 });

test("a locked directory whose attributes change is watched once it can be read, what it holds reported as created, once", () => {
  const root = tree();
  const locked = new Set([join(root, "locked")]);
  const { hub, tried } = lockingHub(locked);
  const w = watcher(hub, root);
  w.start();
  expect(drain(w)).toEqual([{ kind: "dropped", count: null, reason: "unwatchable" }]);
  // Still locked (a chmod that changed something else): nothing new, said once.
  w.onDirAttrib(join(root, "locked"));
  expect(drain(w)).toEqual([]);
  locked.clear();
  w.onDirAttrib(join(root, "locked"));
  expect(drain(w)).toEqual([
    { kind: "change", type: "created", path: "locked/deeper", is_dir: true },
    { kind: "change", type: "created", path: "locked/deeper/note", is_dir: false },
    { kind: "change", type: "created", path: "locked/inside", is_dir: false },
  ]);
  // Watched now: another attribute change reports nothing twice.
  const count = tried.length;
  w.onDirAttrib(join(root, "locked"));
  expect(drain(w)).toEqual([]);
  expect(tried.length).toBe(count + 1);
  w.close();
});

test("only a recursive watch that met a locked directory tries, only under its root, and only from a directory's real path", () => {
  const root = tree();
  mkdirSync(join(root, "open"));
  const { hub, tried } = lockingHub(new Set());
  // Never met a locked directory: attribute changes cost nothing.
  const plain = watcher(hub, root);
  plain.start();
  drain(plain);
  const before = tried.length;
  plain.onDirAttrib(join(root, "open"));
  expect(tried.length).toBe(before);

  const outside = tree();
  const locked = new Set([join(root, "locked")]);
  const second = lockingHub(locked);
  const w = watcher(second.hub, root);
  w.start();
  drain(w);
  const n = second.tried.length;
  // Outside the root, the root itself, and a path through a symlink (a parent swapped for one): not tried.
  w.onDirAttrib(join(outside, "locked"));
  w.onDirAttrib(root);
  symlinkSync(join(outside, "locked"), join(root, "swapped"));
  w.onDirAttrib(join(root, "swapped"));
  expect(second.tried.length).toBe(n);
  expect(drain(w)).toEqual([]);

  // A flat watch never watches what is below it.
  const flat = watcher(lockingHub(new Set([join(root, "locked")])).hub, root, false);
  flat.start();
  flat.onDirAttrib(join(root, "locked"));
  expect(drain(flat)).toEqual([]);
});

test("a directory locked again between its watch and its listing is unwatched, and comes back whole with the next chmod", () => {
  const root = tree();
  const locked = new Set([join(root, "locked")]);
  const { hub, removed } = lockingHub(locked);
  // The watch is added, then the listing is refused: as if chmod 000 came in between.
  let relock = false;
  const list = (dir: string): Dirent[] => {
    if (relock && dir === join(root, "locked")) throw Object.assign(new Error("EACCES"), { code: "EACCES" });
    return readdirSync(dir, { withFileTypes: true });
  };
  const w = new DirWatcher({ hub, workspace: root, root, recursive: true, queueMax: 100, maxDirs: 100, list });
  w.start();
  drain(w);
  locked.clear();
  relock = true;
  w.onDirAttrib(join(root, "locked"));
  expect(removed).toHaveLength(1);
  expect(drain(w)).toEqual([]);
  relock = false;
  w.onDirAttrib(join(root, "locked"));
  expect(drain(w).map((i) => (i.kind === "change" ? i.path : i.kind))).toEqual(["locked/deeper", "locked/deeper/note", "locked/inside"]);
});
