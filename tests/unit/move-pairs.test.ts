/** A rename's two halves are paired by cookie wherever they are in a read; a half near a read's end waits for the next read. */
import { expect, test } from "bun:test";
import { IN, type RawEvent } from "../../src/ship/watch/inotify.ts";
import { PAIR_TAIL, pairMoves } from "../../src/ship/watch/move-pairs.ts";

const from = (name: string, cookie: number, wd = 1): RawEvent => ({ wd, mask: IN.MOVED_FROM | IN.ISDIR, cookie, name });
const to = (name: string, cookie: number, wd = 1): RawEvent => ({ wd, mask: IN.MOVED_TO | IN.ISDIR, cookie, name });
const made = (name: string, wd = 2): RawEvent => ({ wd, mask: IN.CREATE, cookie: 0, name });

/** What the visitor was told, in order. */
function run(waiting: RawEvent[], events: RawEvent[], cut = false) {
  const told: string[] = [];
  const left = pairMoves(waiting, events, cut, {
    rename: (f, t) => told.push(`rename ${f.name}->${t.name}`),
    movedOut: (f) => told.push(`out ${f.name}`),
    single: (e) => told.push(`${e.mask & IN.MOVED_TO ? "in" : "event"} ${e.name}`),
  });
  return { told, left: left.map((e) => e.name) };
}

test("halves with other directories' events between them are one rename, told where the first half was", () => {
  const { told, left } = run([], [made("x"), from("a", 7), made("y"), made("z"), to("b", 7), made("w")]);
  expect(told).toEqual(["event x", "rename a->b", "event y", "event z", "event w"]);
  expect(left).toEqual([]);
});

test("interleaved renames pair by their own cookies; a lone MOVED_TO is a move in", () => {
  const { told } = run([], [from("a", 1), from("c", 2), to("d", 2), to("b", 1), to("in", 9), made("k")]);
  expect(told).toEqual(["rename a->b", "rename c->d", "in in", "event k"]);
});

test("a MOVED_FROM without its half is a move out, unless it ends the read", () => {
  expect(run([], [from("a", 1), made("x")])).toEqual({ told: ["out a", "event x"], left: [] });
  expect(run([], [made("x"), from("a", 1)])).toEqual({ told: ["event x"], left: ["a"] });
});

test("a read cut short keeps every lone MOVED_FROM of its last events waiting; one further back is a move out", () => {
  const filler = Array.from({ length: PAIR_TAIL - 1 }, (_, i) => made(`f${i}`));
  const r = run([], [from("far", 1), made("x"), from("near", 2), ...filler], true);
  expect(r.told.slice(0, 2)).toEqual(["out far", "event x"]);
  expect(r.left).toEqual(["near"]);
  // The same read, not cut: only a last event waits.
  expect(run([], [from("near", 2), made("x")], false).left).toEqual([]);
});

test("a waiting MOVED_FROM pairs with its half anywhere in the next read, or is a move out before it", () => {
  expect(run([from("a", 5)], [made("x"), made("y"), to("b", 5)]).told).toEqual(["rename a->b", "event x", "event y"]);
  expect(run([from("a", 5)], [made("x"), to("b", 6)]).told).toEqual(["out a", "event x", "in b"]);
  expect(run([from("a", 5)], []).told).toEqual(["out a"]);
});

test("a MOVED_TO is never paired twice, nor with a MOVED_FROM after it", () => {
  // The kernel never repeats a cookie; a forged or wrapped one must not pair backwards or twice.
  const { told } = run([], [to("b", 3), from("a", 3), made("x"), from("c", 4), to("d", 4), from("e", 4), made("y")]);
  expect(told).toEqual(["in b", "out a", "event x", "rename c->d", "out e", "event y"]);
});
