/** The walks a recursive watch waits to do: once each, within a deadline, bounded, and waiting while the hub is behind a move above them. */
import { expect, test } from "bun:test";
import { MAX_BEHIND_POLLS, WaitingWalks, type Walk, type WalkOutcome } from "../../src/ship/watch/waiting-walks.ts";

const names = (walks: Walk[]) => walks.map((w) => `${w.wd}/${w.name}${w.unlessHeld ? " held?" : ""}`);
const never = () => {
  throw new Error("nothing is lost here");
};
/** One run in which every walk is done (none lost): what it walked, and whether none is left. */
function walkAll(ww: WaitingWalks, deadline = Number.POSITIVE_INFINITY, first = true): { walked: Walk[]; done: boolean } {
  const walked: Walk[] = [];
  const done = ww.run(deadline, first, (w) => (walked.push(w), "done"), never);
  return { walked, done };
}

test("a directory asked for many times is walked once, 'unless held' only when every ask was", () => {
  const ww = new WaitingWalks(10);
  ww.add({ wd: 1, name: "a" }, true);
  ww.add({ wd: 1, name: "a" }, false);
  ww.add({ wd: 1, name: "a" }, true);
  ww.add({ wd: 1, name: "b" }, true);
  ww.add({ wd: 2, name: "a" }, true);
  const { walked, done } = walkAll(ww);
  expect(done).toBe(true);
  expect(names(walked)).toEqual(["1/a", "1/b held?", "2/a held?"]);
  expect(ww.size).toBe(0);
});

test("past the deadline it stops (one walk past it only when first), and the rest waits", () => {
  const ww = new WaitingWalks(10);
  for (const name of ["a", "b", "c"]) ww.add({ wd: 1, name }, false);
  const at = (run: { walked: Walk[]; done: boolean }) => ({ walked: run.walked.map((w) => w.name), done: run.done });
  expect(at(walkAll(ww, 0, false))).toEqual({ walked: [], done: false });
  expect(at(walkAll(ww, 0, true))).toEqual({ walked: ["a"], done: false });
  expect(at(walkAll(ww, Number.POSITIVE_INFINITY, false))).toEqual({ walked: ["b", "c"], done: true });
});

test("a walk whose holding directory the hub has not caught up with waits, a poll at a time, then counts as lost", () => {
  const ww = new WaitingWalks(10);
  ww.add({ wd: 1, name: "x" }, false);
  let tries = 0;
  let lost = 0;
  const behind = (): WalkOutcome => {
    tries++;
    return "behind";
  };
  // Tried once per run, however long the deadline; the run says some are left.
  expect(ww.run(Number.POSITIVE_INFINITY, true, behind, () => lost++)).toBe(false);
  expect([tries, ww.size, lost]).toEqual([1, 1, 0]);
  for (let i = 1; i < MAX_BEHIND_POLLS; i++) ww.run(Number.POSITIVE_INFINITY, true, behind, () => lost++);
  expect([tries, ww.size, lost]).toEqual([MAX_BEHIND_POLLS, 0, 1]);
  // Asked for again while it waits, it keeps how long it waited (review s77).
  ww.add({ wd: 1, name: "z" }, false);
  for (let i = 0; i < MAX_BEHIND_POLLS; i++) {
    ww.add({ wd: 1, name: "z" }, false);
    ww.run(Number.POSITIVE_INFINITY, true, behind, () => lost++);
  }
  expect([ww.size, lost]).toEqual([0, 2]);
  lost = 1;
  // Caught up before that: walked, nothing lost.
  ww.add({ wd: 1, name: "y" }, false);
  ww.run(Number.POSITIVE_INFINITY, true, behind, () => lost++);
  const { walked, done } = walkAll(ww);
  expect(done).toBe(true);
  expect(walked.map((w) => w.name)).toEqual(["y"]);
  expect(lost).toBe(1);
});

test("past its bound none is kept but the walks that only follow a held directory, unless those fill half of it", () => {
  const ww = new WaitingWalks(4);
  ww.add({ wd: 1, name: "a" }, false);
  ww.add({ wd: 1, name: "b" }, true);
  ww.add({ wd: 1, name: "c" }, false);
  ww.add({ wd: 1, name: "d" }, false);
  expect(ww.add({ wd: 1, name: "a" }, false)).toBe(true); // one already waiting: no growth
  expect(ww.add({ wd: 1, name: "e" }, false)).toBe(false);
  expect(names(walkAll(ww).walked)).toEqual(["1/b held?"]);
  const full = new WaitingWalks(4);
  for (const name of ["a", "b", "c", "d"]) full.add({ wd: 1, name }, true);
  expect(full.add({ wd: 1, name: "e" }, true)).toBe(false);
  expect(full.size).toBe(0);
});

test("the rest of a walk cut short is one walk however many names; walked in part, it takes its turn after the others", () => {
  const ww = new WaitingWalks(2);
  expect(ww.addRest(1, ["old-a", "old-b"], 3)).toBe(true);
  // A newer listing of the same directory supersedes what an older one left (a directory moved
  // in and out again and again does not pile up its names: review s81 M2).
  expect(
    ww.addRest(
      1,
      Array.from({ length: 5000 }, (_, i) => `d${i}`),
      7,
    ),
  ).toBe(true);
  expect(ww.add({ wd: 2, name: "x" }, false)).toBe(true);
  expect(ww.size).toBe(2);
  const order: string[] = [];
  let left = 0;
  // Each run walks two names of the rest, then says "more"; the other walk is served before the rest again.
  const step = (w: Walk): WalkOutcome => {
    if (!w.rest) {
      order.push(`${w.wd}/${w.name}`);
      return "done";
    }
    order.push(`rest:${w.rest.pop()},${w.rest.pop()} since ${w.since}`);
    left = w.rest.length;
    return w.rest.length > 0 ? "more" : "done";
  };
  expect(ww.run(Number.POSITIVE_INFINITY, true, step, never)).toBe(false);
  expect(order).toEqual(["rest:d4999,d4998 since 7", "2/x"]);
  expect([ww.size, left]).toEqual([1, 4998]);
  // Past its bound no rest is lost silently: add says so.
  const full = new WaitingWalks(1);
  full.add({ wd: 1, name: "a" }, false);
  expect(full.addRest(2, ["b"], 1)).toBe(false);
});

test("a walk of a rest that throws keeps what is left of the rest waiting (review s81 L1)", () => {
  const ww = new WaitingWalks(10);
  ww.addRest(1, ["a", "b", "c"], 1);
  const boom = (w: Walk): WalkOutcome => {
    w.rest!.pop();
    throw new Error("a walk failed");
  };
  expect(() => ww.run(Number.POSITIVE_INFINITY, true, boom, never)).toThrow("a walk failed");
  const { walked } = walkAll(ww);
  expect(walked.map((w) => w.rest)).toEqual([["a", "b"]]);
});
