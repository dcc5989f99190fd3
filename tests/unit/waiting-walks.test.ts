/** The walks a recursive watch waits to do: once each, within a deadline, bounded, and tried once more while a move above is half read. */
import { expect, test } from "bun:test";
import { WaitingWalks, type Walk } from "../../src/ship/watch/waiting-walks.ts";

const names = (walks: Walk[]) => walks.map((w) => `${w.wd}/${w.name}${w.unlessHeld ? " held?" : ""}`);

test("a directory asked for many times is walked once, 'unless held' only when every ask was", () => {
  const ww = new WaitingWalks(10);
  ww.add({ wd: 1, name: "a" }, true);
  ww.add({ wd: 1, name: "a" }, false);
  ww.add({ wd: 1, name: "a" }, true);
  ww.add({ wd: 1, name: "b" }, true);
  ww.add({ wd: 2, name: "a" }, true);
  const walked: Walk[] = [];
  expect(
    ww.run(
      Number.POSITIVE_INFINITY,
      true,
      (w) => walked.push(w) > 0,
      () => false,
    ),
  ).toBe(true);
  expect(names(walked)).toEqual(["1/a", "1/b held?", "2/a held?"]);
  expect(ww.size).toBe(0);
});

test("past the deadline it stops (one walk past it only when first), and the rest waits", () => {
  const ww = new WaitingWalks(10);
  for (const name of ["a", "b", "c"]) ww.add({ wd: 1, name }, false);
  const walked: string[] = [];
  const walk = (w: Walk) => walked.push(w.name) > 0;
  expect(ww.run(0, false, walk, () => false)).toBe(false);
  expect(walked).toEqual([]);
  expect(ww.run(0, true, walk, () => false)).toBe(false);
  expect(walked).toEqual(["a"]);
  expect(ww.run(Number.POSITIVE_INFINITY, false, walk, () => false)).toBe(true);
  expect(walked).toEqual(["a", "b", "c"]);
});

test("a walk that found nothing while a move is half read waits once more, never twice", () => {
  const ww = new WaitingWalks(10);
  ww.add({ wd: 1, name: "x" }, false);
  let tries = 0;
  const absent = () => {
    tries++;
    return false;
  };
  expect(ww.run(Number.POSITIVE_INFINITY, true, absent, () => true)).toBe(true);
  expect(ww.size).toBe(1);
  ww.run(Number.POSITIVE_INFINITY, true, absent, () => true);
  expect(ww.size).toBe(0);
  expect(tries).toBe(2);
  // Nothing half read: not kept.
  ww.add({ wd: 1, name: "y" }, false);
  ww.run(Number.POSITIVE_INFINITY, true, absent, () => false);
  expect(ww.size).toBe(0);
});

test("past its bound none is kept but the walks that only follow a held directory, unless those fill half of it", () => {
  const ww = new WaitingWalks(4);
  ww.add({ wd: 1, name: "a" }, false);
  ww.add({ wd: 1, name: "b" }, true);
  ww.add({ wd: 1, name: "c" }, false);
  ww.add({ wd: 1, name: "d" }, false);
  expect(ww.add({ wd: 1, name: "a" }, false)).toBe(true); // one already waiting: no growth
  expect(ww.add({ wd: 1, name: "e" }, false)).toBe(false);
  const left: Walk[] = [];
  ww.run(
    Number.POSITIVE_INFINITY,
    true,
    (w) => left.push(w) > 0,
    () => false,
  );
  expect(names(left)).toEqual(["1/b held?"]);
  const full = new WaitingWalks(4);
  for (const name of ["a", "b", "c", "d"]) full.add({ wd: 1, name }, true);
  expect(full.add({ wd: 1, name: "e" }, true)).toBe(false);
  expect(full.size).toBe(0);
});
