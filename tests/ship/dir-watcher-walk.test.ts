/**
 * A recursive watch walks a directory by descriptors: what is below a directory is
 * opened through the directory's own descriptor, never through a symlink, so a
 * directory swapped for a symlink while it is walked cannot lead the walk (or the
 * watches it leaves) outside (review s62). Against the real inotify hub and real
 * directories; the swap happens right after the directory is listed, where a
 * racing tenant would put it. No descriptor is left open, whatever ends the walk.
 */
import { expect, test } from "bun:test";
import { type Dirent, mkdirSync, readdirSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DirWatcher, type WatchItem } from "../../src/ship/watch/dir-watcher.ts";
import { WatchHub } from "../../src/ship/watch/watch-hub.ts";
import { drain, handHub, hubs, temp, watcherOn } from "./support/watch-fixtures.ts";

const paths = (items: WatchItem[]) => items.flatMap((i) => (i.kind === "change" && i.type !== "modified" ? [i.path] : []));
const openFds = () => readdirSync("/proc/self/fd").length;

test("a directory swapped for a symlink while it is walked leads the walk nowhere outside", () => {
  const root = temp("bay-walk-");
  const outside = temp("bay-outside-");
  mkdirSync(join(outside, "A", "deep"), { recursive: true });
  writeFileSync(join(outside, "A", "SECRET"), "s");
  const hub = handHub();
  const w = watcherOn(hub, root, {
    queueMax: 1000,
    maxDirs: 100,
    // Right after L is listed, L goes and a symlink to the outside tree takes its name.
    list: (dir) => {
      const entries = readdirSync(dir, { withFileTypes: true }) as Dirent[];
      if (readlinkSync(dir) === join(root, "L")) {
        renameSync(join(root, "L"), join(root, "L2"));
        symlinkSync(outside, join(root, "L"));
      }
      return entries;
    },
  });
  w.start();
  drain(w);
  // L appears (made whole, then moved in), so its tree is walked and reported.
  const made = temp("bay-made-");
  mkdirSync(join(made, "L", "A", "inner"), { recursive: true });
  writeFileSync(join(made, "L", "A", "mine"), "m");
  renameSync(join(made, "L"), join(root, "L"));
  hub.poll();
  const seen = paths(drain(w));
  expect(seen).toContain("L");
  expect(seen.filter((p) => p.includes("SECRET") || p.includes("deep"))).toEqual([]);
  // What the walk watched is the real tree (now L2), never the outside one.
  writeFileSync(join(outside, "A", "outside-live"), "o");
  writeFileSync(join(root, "L2", "A", "inside-live"), "i");
  hub.poll();
  const live = paths(drain(w));
  expect(live.filter((p) => p.includes("outside-live"))).toEqual([]);
  expect(live.filter((p) => p.endsWith("inside-live"))).toHaveLength(1);
  w.close();
});

test("the walk reports and watches a whole tree, and leaves no descriptor open, whether it ends or stops at the limit", () => {
  const root = temp("bay-walk-");
  const hub = new WatchHub(1_000_000);
  hubs.push(hub);
  let deep = root;
  for (let i = 0; i < 30; i++) {
    deep = join(deep, `d${i}`);
    mkdirSync(deep);
    writeFileSync(join(deep, "f"), "x");
  }
  const before = openFds();
  const w = new DirWatcher({ hub, workspace: root, root, recursive: true, queueMax: 1000, maxDirs: 100 });
  w.start();
  expect(openFds()).toBe(before + 1); // the hub's inotify descriptor
  writeFileSync(join(deep, "new"), "n");
  hub.poll();
  expect(paths(drain(w))).toEqual([`${deep.slice(root.length + 1)}/new`]);
  w.close();

  const limited = new DirWatcher({ hub, workspace: root, root, recursive: true, queueMax: 1000, maxDirs: 5 });
  limited.start();
  expect(drain(limited)).toEqual([{ kind: "dropped", count: null, reason: "watch_limit" }]);
  expect(openFds()).toBe(before + 1);
  limited.close();
});

/** A recursive watch of `root` on a hub of its own, polled by hand. */
function watching(root: string, workspace = root) {
  const hub = new WatchHub(1_000_000);
  hubs.push(hub);
  const w = new DirWatcher({ hub, workspace, root, recursive: true, queueMax: 1000, maxDirs: 100 });
  w.start();
  return { hub, w };
}

test("a directory made and moved before its creation is read is walked where it went, and watched there (review s69)", () => {
  const root = temp("bay-walk-");
  const { hub, w } = watching(root);
  // Built in a temporary directory, then renamed, all within one poll.
  mkdirSync(join(root, "X", "a"), { recursive: true });
  writeFileSync(join(root, "X", "a", "made"), "m");
  renameSync(join(root, "X"), join(root, "Y"));
  hub.poll();
  expect(paths(drain(w))).toEqual(["X", "Y", "Y/a", "Y/a/made"]);
  writeFileSync(join(root, "Y", "new"), "n");
  writeFileSync(join(root, "Y", "a", "new2"), "n");
  hub.poll();
  expect(paths(drain(w))).toEqual(["Y/new", "Y/a/new2"]);
  // A directory this watch holds, moved inside it, is not walked again.
  renameSync(join(root, "Y"), join(root, "Z"));
  hub.poll();
  expect(paths(drain(w))).toEqual(["Z"]);
  w.close();
});

test("a directory moved inside the watch is told from another made at its old name in the same poll, by its inode (review s70)", () => {
  const root = temp("bay-walk-");
  const { hub, w } = watching(root);
  // The walk on the first creation of c finds the second c, and the move then names that watch a.
  mkdirSync(join(root, "c"));
  renameSync(join(root, "c"), join(root, "a"));
  mkdirSync(join(root, "c"));
  hub.poll();
  drain(w);
  writeFileSync(join(root, "a", "f"), "x");
  writeFileSync(join(root, "c", "g"), "x");
  hub.poll();
  expect(paths(drain(w)).sort()).toEqual(["a/f", "c/g"]);
  w.close();
});

test("a held directory whose watches the hub knows under stale paths is walked again, so nothing moved out later is reported (review s71)", () => {
  const ws = temp("bay-walk-");
  const root = join(ws, "R");
  mkdirSync(join(root, "b", "sub"), { recursive: true });
  const { hub, w } = watching(root, ws);
  // In one poll: the hub's moves leave b's watches named a and a/sub, while b is at c.
  mkdirSync(join(root, "c"));
  renameSync(join(root, "c"), join(root, "a"));
  renameSync(join(root, "b"), join(root, "c"));
  hub.poll();
  drain(w);
  writeFileSync(join(root, "c", "sub", "f"), "x");
  hub.poll();
  expect(paths(drain(w))).toEqual(["R/c/sub/f"]);
  // Moved out of the watch: what happens there is not reported, under any name.
  renameSync(join(root, "c"), join(ws, "outside"));
  hub.poll();
  expect(paths(drain(w))).toEqual(["R/c"]);
  writeFileSync(join(ws, "outside", "sub", "secret-name"), "x");
  mkdirSync(join(ws, "outside", "sub", "d2"));
  writeFileSync(join(root, "a", "in"), "x");
  hub.poll();
  expect(paths(drain(w))).toEqual(["R/a/in"]);
  w.close();
});

test("a watch's root is watched only at exactly its path: one reached through a symlink is refused, none is watched outside (review s78)", () => {
  const ws = temp("bay-walk-");
  const outside = temp("bay-outside-");
  mkdirSync(join(outside, "b"));
  // A directory on the way swapped for a symlink after the route resolved the path.
  symlinkSync(outside, join(ws, "a"));
  const hub = handHub();
  const before = openFds();
  for (const recursive of [true, false]) {
    const w = watcherOn(hub, join(ws, "a", "b"), { workspace: ws, recursive });
    let code: string | undefined;
    try {
      w.start();
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    expect({ recursive, code }).toEqual({ recursive, code: "ENOENT" });
    w.close();
    expect(hub.pathOf(1)).toBeUndefined();
  }
  // Gone altogether: refused the same way; no descriptor left open either way.
  const gone = watcherOn(hub, join(ws, "none"), { workspace: ws });
  expect(() => gone.start()).toThrow();
  gone.close();
  expect(openFds()).toBe(before);
  // At its real path the same directory is watched, and reports what happens in it.
  const real = watcherOn(hub, join(outside, "b"), { workspace: outside });
  real.start();
  writeFileSync(join(outside, "b", "f"), "x");
  hub.poll();
  expect(paths(drain(real))).toEqual(["b/f"]);
  real.close();
  hub.close(); // its inotify descriptor, opened by the first watch it held
  expect(openFds()).toBe(before);
});

test("a root moved out between its check and its watch is refused, and nothing outside is watched (review s83 LOW-1)", () => {
  const ws = temp("bay-walk-");
  const outside = temp("bay-outside-");
  const root = join(ws, "r");
  mkdirSync(join(root, "sub"), { recursive: true });
  const hub = handHub();
  // The sandbox's rename, where a racing tenant would put it: right before the root's watch is added.
  const addAt = hub.addAt.bind(hub);
  hub.addAt = (dir, sub, opened) => {
    if (dir === root) renameSync(root, join(outside, "r"));
    return addAt(dir, sub, opened);
  };
  const w = watcherOn(hub, root, { workspace: ws });
  expect(() => w.start()).toThrow(expect.objectContaining({ code: "ENOENT" }));
  // The watch the check would have left on the moved directory is gone: what happens there now is nobody's.
  expect(hub.pathOf(1)).toBeUndefined();
  writeFileSync(join(outside, "r", "leak"), "x");
  hub.poll();
  expect(drain(w)).toEqual([]);
  w.close();
});
