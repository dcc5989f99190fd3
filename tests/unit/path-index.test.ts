/** Watches by path: what is under a directory is found without looking at the others. */
import { expect, test } from "bun:test";
import { PathIndex } from "../../src/ship/watch/path-index.ts";

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
  expect(
    ix
      .under("/w/a/b")
      .map(([wd]) => wd)
      .sort(),
  ).toEqual([1, 2]);
  expect(ix.under("/w").length).toBe(paths.length);
  expect(ix.under("/nowhere")).toEqual([]);
});

test("a path may hold several descriptors; each is added once and deleted exactly", () => {
  const ix = new PathIndex();
  ix.add("/w/x", 3);
  ix.add("/w/x", 1);
  ix.add("/w/x", 3);
  expect(ix.size).toBe(2);
  expect(
    ix
      .under("/w/x")
      .map(([wd]) => wd)
      .sort(),
  ).toEqual([1, 3]);
  ix.delete("/w/x", 2); // not there: nothing
  ix.delete("/w/y", 1);
  expect(ix.size).toBe(2);
  ix.delete("/w/x", 1);
  expect(ix.under("/w/x")).toEqual([[3, "/w/x"]]);
  ix.clear();
  expect(ix.size).toBe(0);
});

test("a directory nobody watches may lie between watched ones; emptied branches go", () => {
  const ix = new PathIndex();
  ix.add("/w/a/b/c", 1);
  ix.add("/w", 2);
  expect(ix.under("/w/a")).toEqual([[1, "/w/a/b/c"]]);
  expect(ix.under("/w/a/b/c/d")).toEqual([]);
  ix.delete("/w/a/b/c", 1);
  expect(ix.under("/w/a")).toEqual([]);
  expect(ix.under("/w")).toEqual([[2, "/w"]]);
  expect(ix.under("/")).toEqual([[2, "/w"]]);
  expect(ix.size).toBe(1);
});

test("right through many adds and deletes (against a scan of every path)", () => {
  const ix = new PathIndex();
  const live = new Map<number, string>();
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const names = ["a", "b", "a-b", "a0", "ab"];
  const pathOf = () => `/r/${Array.from({ length: 1 + rnd(3) }, () => names[rnd(names.length)]).join("/")}`;
  for (let i = 0; i < 3000; i++) {
    const wd = rnd(200);
    const old = live.get(wd);
    if (old !== undefined && rnd(2) === 0) {
      ix.delete(old, wd);
      live.delete(wd);
    } else if (old === undefined) {
      const p = pathOf();
      ix.add(p, wd);
      live.set(wd, p);
    }
  }
  for (const dir of ["/r/a", "/r/a/b", "/r/ab", "/r"]) {
    const scan = [...live].filter(([, p]) => p === dir || p.startsWith(`${dir}/`)).map(([wd]) => wd);
    expect(
      ix
        .under(dir)
        .map(([wd]) => wd)
        .sort((x, y) => x - y),
    ).toEqual(scan.sort((x, y) => x - y));
  }
});
