/**
 * `bay sandbox shell`'s count of input in flight (src/bay/cli/input-window.ts):
 * within Bay's window input goes, past it it waits for acknowledgements; before
 * Bay tells the window a first allowance goes, and a Bay that never tells it is
 * taken as not counting after a wait.
 */
import { expect, test } from "bun:test";
import { InputWindow } from "../../src/bay/cli/input-window.ts";

function windowAt(now: { t: number }) {
  return new InputWindow({ first: 100, waitMs: 1000, now: () => now.t });
}

test("within the window input goes; past it, it waits for the shell's acknowledgements", () => {
  const now = { t: 0 };
  const w = windowAt(now);
  w.told(300);
  expect(w.fits(250)).toBe(true);
  w.sent(250);
  expect(w.fits(50)).toBe(true);
  expect(w.fits(51)).toBe(false);
  now.t += 60_000; // once told, waiting never gives up
  expect(w.fits(51)).toBe(false);
  w.acked(1);
  expect(w.fits(51)).toBe(true);
  // More acknowledged than sent (an ack for input sent before the window was told) counts as none in flight.
  w.acked(10_000);
  w.sent(300);
  expect(w.fits(1)).toBe(false);
});

test("a chunk larger than the window goes alone, once nothing is in flight", () => {
  const w = windowAt({ t: 0 });
  w.told(100);
  expect(w.fits(500)).toBe(true);
  w.sent(500);
  expect(w.fits(1)).toBe(false);
  w.acked(500);
  expect(w.fits(1)).toBe(true);
});

test("before the window is told, the first allowance goes; a Bay that never tells it is no longer counted after the wait", () => {
  const now = { t: 0 };
  const w = windowAt(now);
  w.sent(90);
  expect(w.fits(10)).toBe(true);
  expect(w.fits(11)).toBe(false);
  now.t += 999;
  expect(w.fits(11)).toBe(false);
  now.t += 1;
  expect(w.fits(11)).toBe(true);
  w.sent(1_000_000);
  expect(w.fits(1_000_000)).toBe(true);
  // A window told late changes nothing once given up on.
  w.told(10);
  expect(w.fits(1_000_000)).toBe(true);
});

test("the wait for the window restarts once input fits again; a nonsense window or count is not taken", () => {
  const now = { t: 0 };
  const w = windowAt(now);
  w.sent(100);
  expect(w.fits(1)).toBe(false);
  now.t += 900;
  w.acked(100);
  expect(w.fits(1)).toBe(true);
  w.sent(100);
  now.t += 200;
  expect(w.fits(1)).toBe(false); // a new wait: 200 ms of it so far
  for (const bad of [-5, 0, 1.5, "7", null]) w.acked(bad);
  expect(w.fits(1)).toBe(false);
  const odd = windowAt({ t: 0 });
  odd.told("big");
  odd.sent(10_000_000);
  expect(odd.fits(10_000_000)).toBe(true);
});
