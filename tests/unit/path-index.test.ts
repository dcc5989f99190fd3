/** Where each watch's directory is: a move re-hangs one node, what is below follows; what is under a directory is found without looking at the others. */
import { expect, test } from "bun:test";
import { PathIndex } from "../../src/ship/watch/path-index.ts";

const sorted = (pairs: Array<[number, string]>) => pairs.map(([wd, p]) => `${wd} ${p}`).sort();

test("under a directory: itself and what is below it, never a sibling sharing its prefix", () => {
  const ix = new PathIndex();
  const paths = [
    "/w/a",
    "/w/a/b",
    "/w/a/b/c",
    "/w/a-b",
    "/w/a.b",
    "/w/a0",
    "/w/ab",
    "/w/a!",
    "/w",
    "/w/b/a",
    "/w/a/\u00e9",
    "/w/a/\u{1F600}",
  ];
  for (const [wd, p] of paths.entries()) ix.add(p, wd);
  expect(
    ix
      .under("/w/a")
      .map(([, p]) => p)
      .sort(),
  ).toEqual(["/w/a", "/w/a/b", "/w/a/b/c", "/w/a/\u00e9", "/w/a/\u{1F600}"].sort());
  expect(ix.under("/w").length).toBe(paths.length);
  expect(ix.under("/nowhere")).toEqual([]);
  expect(ix.has("/w/a-b")).toBe(true);
  expect(ix.has("/w/b")).toBe(false); // only a way to /w/b/a
});

test("a path may hold several descriptors; each is added once and deleted exactly; emptied branches go", () => {
  const ix = new PathIndex();
  const n3 = ix.add("/w/x", 3);
  const n1 = ix.add("/w/x", 1);
  expect(ix.add("/w/x", 3)).toBe(n3);
  expect(n1).toBe(n3);
  expect(ix.size).toBe(2);
  ix.delete(n1, 2); // not there: nothing
  expect(ix.size).toBe(2);
  ix.delete(n1, 1);
  expect(ix.under("/w/x")).toEqual([[3, "/w/x"]]);
  const deep = ix.add("/w/a/b/c", 9);
  expect(ix.under("/w/a")).toEqual([[9, "/w/a/b/c"]]);
  ix.delete(deep, 9);
  expect(ix.under("/w/a")).toEqual([]);
  expect(ix.has("/w/x")).toBe(true);
  ix.clear();
  expect(ix.size).toBe(0);
  expect(ix.has("/w/x")).toBe(false);
});

test("a move re-hangs a directory with everything below it, leaving its neighbours; each node's path follows", () => {
  const ix = new PathIndex();
  const p = ix.add("/w/p", 1);
  const a = ix.add("/w/p/a", 2);
  const b = ix.add("/w/p/a/b", 3);
  ix.add("/w/p-x", 4);
  ix.add("/w/q/z", 5);
  expect(ix.move("/w/p", "/w/q/p2")).toEqual([]); // nothing there before: no descriptor changes node
  expect([ix.pathOf(p), ix.pathOf(a), ix.pathOf(b)]).toEqual(["/w/q/p2", "/w/q/p2/a", "/w/q/p2/a/b"]);
  expect(ix.under("/w/p")).toEqual([]);
  expect(sorted(ix.under("/w/q"))).toEqual(["1 /w/q/p2", "2 /w/q/p2/a", "3 /w/q/p2/a/b", "5 /w/q/z"]);
  expect(ix.size).toBe(5);
  // And again, above it: every path below follows.
  ix.move("/w/q", "/v");
  expect(ix.pathOf(b)).toBe("/v/p2/a/b");
  expect(ix.move("/nowhere", "/w/x")).toEqual([]);
  expect(ix.move("/v", "/v/inside")).toEqual([]);
  expect(ix.pathOf(b)).toBe("/v/p2/a/b");
});

test("a move onto a path held already: both stay there, the moved ones re-homed to the nodes already there", () => {
  const ix = new PathIndex();
  const r = ix.add("/w/r", 6);
  ix.add("/w/r/a", 7);
  ix.add("/w/s", 1);
  ix.add("/w/s/a", 2);
  const b = ix.add("/w/s/a/b", 3);
  const rehomed = ix.move("/w/s", "/w/r");
  expect(rehomed.map(([wd, n]) => `${wd} ${ix.pathOf(n)}`).sort()).toEqual(["1 /w/r", "2 /w/r/a"]);
  expect(rehomed.find(([wd]) => wd === 1)![1]).toBe(r);
  expect(ix.pathOf(b)).toBe("/w/r/a/b");
  expect(sorted(ix.under("/w/r"))).toEqual(["1 /w/r", "2 /w/r/a", "3 /w/r/a/b", "6 /w/r", "7 /w/r/a"]);
  expect(ix.size).toBe(5);
});

test("a take takes a directory and what is below it out; what it took keeps the paths it had", () => {
  const ix = new PathIndex();
  ix.add("/w/r", 1);
  const a = ix.add("/w/r/a", 2);
  const c = ix.add("/w/r/a/b/c", 3);
  ix.add("/w/r/a-b", 4);
  expect(ix.take("/w/r/a").sort()).toEqual([2, 3]);
  expect(ix.size).toBe(2);
  expect(sorted(ix.under("/w/r"))).toEqual(["1 /w/r", "4 /w/r/a-b"]);
  ix.move("/w/r", "/w/z");
  expect([ix.pathOf(a), ix.pathOf(c)]).toEqual(["/w/r/a", "/w/r/a/b/c"]);
  expect(ix.take("/w/r/a")).toEqual([]);
});

test("right through many moves, takes, adds and deletes (against paths kept by hand)", () => {
  const ix = new PathIndex();
  const live = new Map<number, string>();
  const nodes = new Map<number, ReturnType<PathIndex["add"]>>();
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const names = ["a", "b", "a-b", "a0", "ab"];
  const pathOf = () => `/r/${Array.from({ length: 1 + rnd(3) }, () => names[rnd(names.length)]).join("/")}`;
  const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
  for (let i = 0; i < 4000; i++) {
    const op = rnd(10);
    if (op < 5) {
      const wd = rnd(300);
      if (live.has(wd)) continue;
      const p = pathOf();
      nodes.set(wd, ix.add(p, wd));
      live.set(wd, p);
    } else if (op < 7) {
      const wd = rnd(300);
      if (!live.has(wd)) continue;
      ix.delete(nodes.get(wd)!, wd);
      live.delete(wd);
      nodes.delete(wd);
    } else if (op < 9) {
      const from = pathOf();
      const to = pathOf();
      if (from === to || under(to, from)) continue;
      for (const [wd, n] of ix.move(from, to)) nodes.set(wd, n);
      for (const [wd, p] of live) if (under(p, from)) live.set(wd, to + p.slice(from.length));
    } else {
      const dir = pathOf();
      const taken = ix.take(dir);
      const expected = [...live].filter(([, p]) => under(p, dir)).map(([wd]) => wd);
      expect(taken.sort((x, y) => x - y)).toEqual(expected.sort((x, y) => x - y));
      for (const wd of taken) {
        live.delete(wd);
        nodes.delete(wd);
      }
    }
  }
  expect(ix.size).toBe(live.size);
  for (const [wd, p] of live) expect(ix.pathOf(nodes.get(wd)!)).toBe(p);
  for (const dir of ["/r/a", "/r/a/b", "/r/ab", "/r"]) {
    const scan = [...live].filter(([, p]) => under(p, dir)).map(([wd, p]) => `${wd} ${p}`);
    expect(sorted(ix.under(dir))).toEqual(scan.sort());
  }
});
