/**
 * One walk past a poll's budget is cut short and walked on at the next polls (a tree of
 * thousands of directories moved into a watch held the runtime for the whole walk,
 * 0.26 s for 4,000 directories, seconds for a larger one). What is left of it is found
 * where it is now: a directory moved meanwhile is walked at its new place, one that
 * left the watch is not walked, and the walk's descriptors are closed whatever happens.
 */
import { expect, test } from "bun:test";
import { type Dirent, mkdirSync, readdirSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DirWatcher, type WatchItem } from "../../src/ship/watch/dir-watcher.ts";
import { WatchHub } from "../../src/ship/watch/watch-hub.ts";
import { drain, hubs, temp } from "./support/watch-fixtures.ts";

const created = (items: WatchItem[]) => items.flatMap((i) => (i.kind === "change" && i.type === "created" ? [i.path] : []));
const openFds = () => readdirSync("/proc/self/fd").length;

/** A recursive watch of `root`, polled by hand, each listing `slowMs` long (or as long as it says for the directory); `listings` counts them. */
function watching(root: string, slowMs: number | ((dir: string) => number)) {
  const hub = new WatchHub(1_000_000);
  hubs.push(hub);
  let listed = 0;
  const w = new DirWatcher({
    hub,
    workspace: root,
    root,
    recursive: true,
    queueMax: 1_000_000,
    maxDirs: 100_000,
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

test("a walk cut short whose tree then leaves the watch walks nothing more, and its descriptors are closed", () => {
  const root = temp();
  const made = temp();
  const away = temp();
  tree(made, 8, 8);
  const before = openFds();
  const { hub, w } = watching(root, 3);
  renameSync(join(made, "t"), join(root, "t"));
  hub.poll();
  drain(w);
  expect(openFds()).toBeGreaterThan(before); // the walk kept its directories open
  renameSync(join(root, "t"), join(away, "t"));
  for (let polls = 0; polls < 5; polls++) hub.poll();
  expect(created(drain(w))).toEqual([]);
  expect(openFds()).toBeLessThanOrEqual(before + 1); // the inotify instance
  w.close();
});

test("a watch closed, or whose root went, with a walk cut short closes the walk's descriptors", () => {
  for (const end of ["close", "root gone"] as const) {
    const parent = temp();
    const root = join(parent, "root");
    mkdirSync(root);
    const made = temp();
    tree(made, 8, 8);
    const before = openFds();
    const { hub, w } = watching(root, 3);
    renameSync(join(made, "t"), join(root, "t"));
    hub.poll();
    expect(openFds()).toBeGreaterThan(before + 1);
    if (end === "close") w.close();
    else {
      renameSync(root, join(parent, "elsewhere"));
      hub.poll();
      let last = w.take();
      while (last && last.kind !== "gone") last = w.take();
      expect(last).toEqual({ kind: "gone" });
      w.close();
    }
    hub.close();
    expect({ end, fds: openFds() }).toEqual({ end, fds: before });
  }
});

test("a walk is kept for a later poll only within 64 levels: a deeper one walks on until it is back up", () => {
  const root = temp();
  const made = temp();
  let deep = join(made, "c");
  for (let i = 0; i < 150; i++) deep = join(deep, "d");
  mkdirSync(deep, { recursive: true });
  const before = openFds();
  // The poll's budget runs out 100 levels down: a walk kept there would hold 100 descriptors.
  const { hub, w } = watching(root, (dir) => (dir.split("/d").length - 1 === 100 ? 25 : 0));
  renameSync(join(made, "c"), join(root, "c"));
  let most = 0;
  for (let polls = 0; polls < 20; polls++) {
    hub.poll();
    most = Math.max(most, openFds() - before);
  }
  expect(most).toBeGreaterThan(1);
  expect(most).toBeLessThanOrEqual(64 + 1);
  expect(created(drain(w)).length).toBe(1 + 150); // c itself (moved in), and each level
  w.close();
});
