/**
 * The registry of directories a recursive watch could not watch (src/ship/watch/refused-dirs.ts):
 * which attribute changes make one due, how retries are spaced and bounded, and what forgets one.
 * The watches themselves, on a real Ship as the sandbox's user, are in tests/e2e/interactive-watch.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { MAX_ENTRIES, MAX_RETRIES_PER_TAKE, RETRY_SPACING_MS, RefusedDirs } from "../../src/ship/watch/refused-dirs.ts";

function registry() {
  const clock = { now: 1_000_000 };
  const r = new RefusedDirs<string>(() => clock.now);
  return { r, clock, later: () => (clock.now += RETRY_SPACING_MS) };
}

const names = (retries: { wd: number; name: string; subs: Set<string> }[]) =>
  retries.map((x) => `${x.wd}/${x.name}:${[...x.subs].sort().join(",")}`);

describe("refused directories", () => {
  test("an entry is retried only after an attribute change on its name or on its holder, and not before its spacing", () => {
    const { r, later } = registry();
    r.record(1, "a", "w1");
    r.record(1, "b", "w1");
    r.record(2, "c", "w2");
    later();
    expect(r.takeDue()).toEqual([]); // no attribute changed
    r.attributeChanged(1, "zzz"); // another entry of that directory
    r.attributeChanged(3, "a"); // another directory
    expect(r.takeDue()).toEqual([]);
    r.attributeChanged(1, "a");
    expect(names(r.takeDue())).toEqual(["1/a:w1"]);
    expect(r.takeDue()).toEqual([]); // taken: gone until the watcher refuses it again
    r.attributeChanged(1, ""); // the holder itself: every entry it holds
    expect(names(r.takeDue())).toEqual(["1/b:w1"]);
    expect(r.size).toBe(1);
  });

  test("a due entry made moments ago waits out its spacing and is then taken without another change", () => {
    const { r, later } = registry();
    r.record(1, "a", "w1");
    r.attributeChanged(1, "a");
    expect(r.takeDue()).toEqual([]);
    later();
    expect(names(r.takeDue())).toEqual(["1/a:w1"]);
  });

  test("two watchers refusing the same directory share one entry; one that ends is forgotten, its entries with it", () => {
    const { r, later } = registry();
    r.record(1, "a", "w1");
    r.record(1, "a", "w2");
    r.record(1, "b", "w2");
    expect(r.size).toBe(2);
    r.forgetSub("w2");
    expect(r.size).toBe(1);
    later();
    r.attributeChanged(1, "");
    expect(names(r.takeDue())).toEqual(["1/a:w1"]);
  });

  test("a deleted name, or a holder no longer watched, is forgotten", () => {
    const { r, later } = registry();
    r.record(1, "a", "w1");
    r.record(1, "b", "w1");
    r.record(2, "c", "w1");
    expect(r.has(1, "a")).toBe(true);
    r.forgetName(1, "a");
    r.forgetWd(2);
    r.forgetName(9, "nothing");
    expect(r.size).toBe(1);
    expect([r.has(1, "a"), r.has(1, "b"), r.has(2, "c")]).toEqual([false, true, false]);
    later();
    r.attributeChanged(1, "a");
    r.attributeChanged(2, "");
    expect(r.takeDue()).toEqual([]);
  });

  test("a move takes the entry, with every watcher of it, to the new name and holder, due at once", () => {
    const { r, later } = registry();
    r.record(1, "a", "w1");
    r.record(1, "a", "w2");
    r.moved(1, "a", 2, "a2");
    r.moved(1, "unknown", 2, "x");
    expect(r.size).toBe(1);
    later();
    expect(names(r.takeDue())).toEqual(["2/a2:w1,w2"]);
  });

  test("bounded: past MAX_ENTRIES nothing is recorded, and one take hands back at most MAX_RETRIES_PER_TAKE", () => {
    const { r, later } = registry();
    for (let i = 0; i < MAX_ENTRIES; i++) expect(r.record(1, `d${i}`, "w1")).toBe(true);
    expect(r.full).toBe(true);
    expect(r.record(1, "one-more", "w1")).toBe(false);
    expect(r.record(1, "d0", "w2")).toBe(true); // a watcher joins an entry that exists
    later();
    r.attributeChanged(1, "");
    let taken = 0;
    for (;;) {
      const batch = r.takeDue();
      if (batch.length === 0) break;
      expect(batch.length).toBeLessThanOrEqual(MAX_RETRIES_PER_TAKE);
      taken += batch.length;
    }
    expect(taken).toBe(MAX_ENTRIES);
    expect(r.size).toBe(0);
    expect(r.full).toBe(false);
  });

  test("clear forgets everything", () => {
    const { r, later } = registry();
    r.record(1, "a", "w1");
    r.attributeChanged(1, "a");
    r.clear();
    later();
    expect(r.takeDue()).toEqual([]);
    expect(r.size).toBe(0);
  });
});
