/**
 * One walk past a poll's budget is cut short (a tree of thousands of directories moved
 * into a watch held the runtime for the whole walk: 0.26 s for 4,000 directories,
 * seconds for more). What it has not walked yet waits as walks of their own, served in
 * turn with the watch's other walks, each found where it is then and walked only if the
 * watch does not hold it already; no descriptor is kept open between polls (review s79).
 */
import { expect, test } from "bun:test";
import { type Dirent, mkdirSync, readdirSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { WatchItem } from "../../src/ship/watch/dir-watcher.ts";
import { drain, handHub, temp, watcherOn } from "./support/watch-fixtures.ts";

const created = (items: WatchItem[]) => items.flatMap((i) => (i.kind === "change" && i.type === "created" ? [i.path] : []));
const openFds = () => readdirSync("/proc/self/fd").length;

/** A recursive watch of `root`, polled by hand, each listing `slowMs` long (or as long as it says for the directory); `listings` counts them. */
function watching(root: string, slowMs: number | ((dir: string) => number)) {
  const hub = handHub();
  let listed = 0;
  const w = watcherOn(hub, root, {
    list: (dir) => {
      listed++;
      Bun.sleepSync(typeof slowMs === "number" ? slowMs : slowMs(readlinkSync(dir)));
      return readdirSync(dir, { withFileTypes: true }) as Dirent[];
    },
  });
  w.start();
  return { hub, w, listings: () => listed };
}

/** A tree `t` of `a` × `b` directories, a file `f` in each leaf, made in `where`; its leaves' paths relative to `t`'s parent. */
function tree(where: string, a: number, b: number): string[] {
  const leaves: string[] = [];
  for (let i = 0; i < a; i++)
    for (let j = 0; j < b; j++) {
      mkdirSync(join(where, "t", `a${i}`, `b${j}`), { recursive: true });
      writeFileSync(join(where, "t", `a${i}`, `b${j}`, "f"), "");
      leaves.push(`t/a${i}/b${j}/f`);
    }
  return leaves;
}

test("a tree moved in is walked over several polls, a bounded part each, and what it holds reported once", () => {
  const root = temp();
  const made = temp();
  const leaves = tree(made, 10, 8); // 91 directories
  const { hub, w, listings } = watching(root, 2);
  renameSync(join(made, "t"), join(root, "t"));
  const perPoll: number[] = [];
  const seen: string[] = [];
  for (let polls = 0; polls < 200 && seen.filter((p) => p.endsWith("/f")).length < leaves.length; polls++) {
    const before = listings();
    hub.poll();
    perPoll.push(listings() - before);
    seen.push(...created(drain(w)));
  }
  // 91 listings of 2 ms each do not fit in one poll's 20 ms: each poll walks a part of the one walk.
  expect(perPoll.length).toBeGreaterThan(3);
  expect(Math.max(...perPoll)).toBeLessThan(30);
  expect(seen.filter((p) => p.endsWith("/f")).sort()).toEqual(leaves.sort());
  expect(new Set(seen).size).toBe(seen.length);
  // Watched all through: a change in the last leaf is seen.
  writeFileSync(join(root, "t", "a9", "b7", "late"), "");
  hub.poll();
  expect(created(drain(w))).toEqual(["t/a9/b7/late"]);
  w.close();
});

test("a directory of a walk cut short, moved meanwhile, is walked on at its new place", () => {
  const root = temp();
  const made = temp();
  tree(made, 6, 6);
  const { hub, w } = watching(root, 3);
  renameSync(join(made, "t"), join(root, "t"));
  hub.poll(); // the walk starts, and is cut short
  const early = created(drain(w));
  expect(early.filter((p) => p.endsWith("/f")).length).toBeLessThan(36);
  // The whole tree gets a new name, and so does one of its directories.
  renameSync(join(root, "t"), join(root, "moved"));
  renameSync(join(root, "moved", "a0"), join(root, "moved", "z0"));
  const seen = [...early];
  for (let polls = 0; polls < 100; polls++) {
    hub.poll();
    seen.push(...created(drain(w)));
  }
  // What the walk reported after the moves is under the new names; nothing was walked twice.
  const late = seen.slice(early.length);
  expect(late.filter((p) => p.startsWith("t/"))).toEqual([]);
  const leaves = new Set(seen.filter((p) => p.endsWith("/f")).map((p) => p.replace(/^(t|moved)\//, "").replace(/^z0\//, "a0/")));
  expect(leaves.size).toBe(36);
  // Each leaf is watched where it is now.
  for (const [a, name] of [
    ["z0", "z0"],
    ["a5", "a5"],
  ])
    writeFileSync(join(root, "moved", a!, "b5", `new-${name}`), "");
  hub.poll();
  expect(created(drain(w)).sort()).toEqual(["moved/a5/b5/new-a5", "moved/z0/b5/new-z0"]);
  w.close();
});

test("a walk cut short whose tree then leaves the watch walks nothing more, and keeps no descriptor open", () => {
  const root = temp();
  const made = temp();
  const away = temp();
  tree(made, 8, 8);
  const before = openFds();
  const { hub, w } = watching(root, 3);
  renameSync(join(made, "t"), join(root, "t"));
  hub.poll();
  drain(w);
  expect(openFds()).toBe(before + 1); // the inotify instance, nothing of the walk
  renameSync(join(root, "t"), join(away, "t"));
  for (let polls = 0; polls < 5; polls++) hub.poll();
  expect(created(drain(w))).toEqual([]);
  w.close();
});

test("a deep tree is cut short too: its bulk below 70 levels costs no poll more than a bounded part (review s79 H1)", () => {
  const root = temp();
  const made = temp();
  let deep = join(made, "c");
  for (let i = 0; i < 70; i++) deep = join(deep, "d");
  for (let i = 0; i < 60; i++) for (let j = 0; j < 10; j++) mkdirSync(join(deep, `a${i}`, `b${j}`), { recursive: true });
  const { hub, w, listings } = watching(root, 1);
  renameSync(join(made, "c"), join(root, "c"));
  const perPoll: number[] = [];
  for (let polls = 0; polls < 200; polls++) {
    const before = listings();
    hub.poll();
    perPoll.push(listings() - before);
    if (perPoll.length > 3 && perPoll.slice(-3).every((n) => n === 0)) break;
  }
  // 731 listings of 1 ms each: within each poll's 20 ms, a few over at most.
  expect(Math.max(...perPoll)).toBeLessThan(40);
  const leaves = created(drain(w)).filter((p) => /\/a\d+\/b\d+$/.test(p));
  expect(leaves.length).toBe(600);
  w.close();
});

test("while one long walk goes on, the watch's other walks are served in turn (review s79 M2)", () => {
  const root = temp();
  const made = temp();
  tree(made, 20, 10);
  const { hub, w } = watching(root, 2);
  renameSync(join(made, "t"), join(root, "t"));
  hub.poll(); // the long walk begins, and is cut short
  mkdirSync(join(root, "other"));
  writeFileSync(join(root, "other", "x"), "");
  const seen: string[] = [];
  let polls = 0;
  for (; polls < 200 && !seen.includes("other/x"); polls++) {
    hub.poll();
    seen.push(...created(drain(w)));
  }
  // Served long before the 221 directories of the tree are all walked (about 20 polls).
  expect(seen).toContain("other/x");
  expect(seen.filter((p) => p.endsWith("/f")).length).toBeLessThan(200);
  w.close();
});

test("a directory a cut-short walk has not reached, removed and made again, is reported once (review s79 L2)", () => {
  const root = temp();
  const made = temp();
  tree(made, 10, 8);
  const { hub, w } = watching(root, 3);
  renameSync(join(made, "t"), join(root, "t"));
  hub.poll();
  const seen = created(drain(w));
  // A directory listed, not walked yet: made again with something in it.
  const pending = [...Array(10).keys()].map((i) => `t/a${i}`).find((p) => seen.includes(p) && !seen.some((q) => q.startsWith(`${p}/`)))!;
  expect(pending).toBeDefined();
  renameSync(join(root, pending), join(made, "gone"));
  mkdirSync(join(root, pending, "new"), { recursive: true });
  writeFileSync(join(root, pending, "new", "g"), "");
  for (let polls = 0; polls < 100; polls++) {
    hub.poll();
    seen.push(...created(drain(w)));
  }
  expect(seen.filter((p) => p === `${pending}/new`)).toEqual([`${pending}/new`]);
  expect(seen.filter((p) => p === `${pending}/new/g`)).toEqual([`${pending}/new/g`]);
  w.close();
});

test("a directory walked again once it may be read (a retry) is cut short at the hub's deadline as well (review s79 M1)", () => {
  const root = temp();
  const made = temp();
  const leaves = tree(made, 6, 6);
  const { hub, w, listings } = watching(root, 1);
  renameSync(join(made, "t"), join(root, "t"));
  // As the hub hands a retried directory back, its budget already spent: the directory itself is listed, the rest waits.
  const before = listings();
  expect(w.onRetry(join(root, "t"), performance.now() - 1)).toBeUndefined();
  expect(listings() - before).toBe(1);
  const seen: string[] = [];
  for (let polls = 0; polls < 50; polls++) {
    hub.poll();
    seen.push(...created(drain(w)));
  }
  expect([...new Set(seen.filter((p) => p.endsWith("/f")))].sort()).toEqual(leaves.sort());
  w.close();
});

test("a directory of 5,000 subdirectories moved in is walked whole over the polls: its rest is one waiting walk, not 5,000 past the bound (review s80 M1)", () => {
  const root = temp();
  const made = temp();
  for (let i = 0; i < 5000; i++) mkdirSync(join(made, "wide", `s${i}`), { recursive: true });
  const { hub, w } = watching(root, 0);
  renameSync(join(made, "wide"), join(root, "wide"));
  const items: WatchItem[] = [];
  for (let polls = 0; polls < 400 && created(items).length < 5001; polls++) {
    hub.poll();
    items.push(...drain(w));
  }
  expect(items.filter((i) => i.kind === "dropped")).toEqual([]);
  expect(new Set(created(items)).size).toBe(5001);
  w.close();
});

test("a retry past the hub's deadline waits its turn with the other walks (review s80 L1)", () => {
  const root = temp();
  const made = temp();
  tree(made, 3, 3);
  const { hub, w, listings } = watching(root, 0);
  renameSync(join(made, "t"), join(root, "t"));
  const rootWd = [...(w as unknown as { tree: { wds: Set<number> } }).tree.wds][0]!;
  const before = listings();
  expect(w.onRetry(join(root, "t"), performance.now() - 1, { wd: rootWd, name: "t" })).toBeUndefined();
  expect(listings()).toBe(before);
  const seen: string[] = [];
  for (let polls = 0; polls < 10; polls++) {
    hub.poll();
    seen.push(...created(drain(w)));
  }
  expect(seen.filter((p) => p.endsWith("/f")).length).toBeGreaterThanOrEqual(9);
  w.close();
});

test("a directory watched but not listed (its listing failed) is told as unwatchable, not held as walked (review s80 L2)", () => {
  const root = temp();
  const made = temp();
  mkdirSync(join(made, "d", "inner"), { recursive: true });
  writeFileSync(join(made, "d", "inner", "f"), "");
  const hub = handHub();
  let failed = false;
  const w = watcherOn(hub, root, {
    queueMax: 1000,
    maxDirs: 100,
    list: (dir) => {
      if (!failed && readlinkSync(dir).endsWith("/inner")) {
        failed = true;
        throw Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
      }
      return readdirSync(dir, { withFileTypes: true }) as Dirent[];
    },
  });
  w.start();
  renameSync(join(made, "d"), join(root, "d"));
  hub.poll();
  const items = drain(w);
  expect(items).toContainEqual({ kind: "dropped", count: null, reason: "unwatchable" });
  expect(created(items)).toEqual(["d", "d/inner"]);
  // Not held: moved inside the watch, it is walked (and what it holds reported) then.
  renameSync(join(root, "d", "inner"), join(root, "inner2"));
  hub.poll();
  hub.poll();
  expect(created(drain(w))).toContain("inner2/f");
  w.close();
});

test("a held directory moved to a place another watch covers and back has all it holds reported again, however its walk is cut (review s82)", () => {
  const ws = temp();
  mkdirSync(join(ws, "a"));
  mkdirSync(join(ws, "b"));
  for (let i = 0; i < 300; i++) {
    mkdirSync(join(ws, "a", "H", `d${i}`), { recursive: true });
    writeFileSync(join(ws, "a", "H", `d${i}`, "f"), "");
  }
  const hub = handHub();
  const mk = (root: string, recursive: boolean) =>
    watcherOn(hub, root, {
      workspace: ws,
      recursive,
      list: (dir) => {
        Bun.sleepSync(1);
        return readdirSync(dir, { withFileTypes: true }) as Dirent[];
      },
    });
  const w = mk(join(ws, "a"), true);
  const other = mk(join(ws, "b"), false);
  w.start();
  other.start();
  // H's watches outlive the move (b's watch covers where it went), and are held when it comes back.
  renameSync(join(ws, "a", "H"), join(ws, "b", "H"));
  hub.poll();
  expect(drain(w)).toEqual([{ kind: "change", type: "deleted", path: "a/H", is_dir: true }]);
  renameSync(join(ws, "b", "H"), join(ws, "a", "H"));
  const seen: string[] = [];
  let polls = 0;
  for (; polls < 200 && seen.filter((p) => p.endsWith("/f")).length < 300; polls++) {
    hub.poll();
    seen.push(...created(drain(w)));
  }
  expect(polls).toBeGreaterThan(1); // the walk was cut short
  expect(new Set(seen.filter((p) => /^a\/H\/d\d+\/f$/.test(p))).size).toBe(300);
  w.close();
  other.close();
});

test("a walk that fails unforeseen tells its reader changes were lost, and the watch goes on", () => {
  const root = temp();
  const made = temp();
  mkdirSync(join(made, "d", "inner"), { recursive: true });
  writeFileSync(join(made, "d", "inner", "f"), "");
  const hub = handHub();
  const w = watcherOn(hub, root);
  w.start();
  // Not a refusal the walk knows (an InotifyError): a fault of the runtime's own.
  const addAt = hub.addAt.bind(hub);
  let threw = 0;
  hub.addAt = (dir, sub, opened) => {
    if (dir.endsWith("/d/inner") && threw++ === 0) throw new TypeError("unforeseen");
    return addAt(dir, sub, opened);
  };
  renameSync(join(made, "d"), join(root, "d"));
  const logged = console.error;
  console.error = () => {};
  try {
    hub.poll();
  } finally {
    console.error = logged;
  }
  expect(threw).toBe(1);
  const items = drain(w);
  expect(items).toContainEqual(expect.objectContaining({ kind: "dropped", reason: "walk_backlog" }));
  expect(created(items)).toEqual(["d", "d/inner"]);
  // The watch still reports what comes in later.
  mkdirSync(join(root, "later"));
  hub.poll();
  expect(created(drain(w))).toEqual(["later"]);
  w.close();
});
