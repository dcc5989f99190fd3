/**
 * RelayedBytes: one eden collection per COLLECT_EVERY_BYTES handed on, counted
 * across every pump of the process (so concurrent transfers share one budget), and
 * never more often than MIN_INTERVAL_MS.
 */
import { expect, test } from "bun:test";
import { COLLECT_EVERY_BYTES, MIN_INTERVAL_MS, RelayedBytes } from "../../src/bay/relayed-bytes.ts";

test("collects once per window of relayed bytes, never below it", () => {
  let collections = 0;
  const r = new RelayedBytes(() => collections++, 1000, 0);
  r.relayed(999);
  expect(collections).toBe(0);
  r.relayed(1);
  expect(collections).toBe(1);
  // The window starts again after a collection: a large chunk does not collect twice.
  r.relayed(5000);
  expect(collections).toBe(2);
  r.relayed(999);
  expect(collections).toBe(2);
  for (let i = 0; i < 10; i++) r.relayed(100);
  expect(collections).toBe(3);
});

test("two transfers interleaved share the window", () => {
  let collections = 0;
  const r = new RelayedBytes(() => collections++, 64, 0);
  const up = (n: number) => r.relayed(n);
  const down = (n: number) => r.relayed(n);
  for (let i = 0; i < 8; i++) {
    up(4);
    down(4);
  }
  expect(collections).toBe(1);
});

test("collections are at least the interval apart, however fast bytes come; the bytes meanwhile are not forgotten", () => {
  let collections = 0;
  let now = 0;
  const r = new RelayedBytes(
    () => collections++,
    100,
    50,
    () => now,
  );
  r.relayed(100);
  expect(collections).toBe(1);
  now = 10;
  r.relayed(500);
  expect(collections).toBe(1);
  now = 60;
  r.relayed(1);
  expect(collections).toBe(2);
});

test("a count that is not a positive number (NaN, a string's undefined length) is ignored, never a collection", () => {
  let collections = 0;
  const r = new RelayedBytes(() => collections++, 100, 0);
  for (const n of [Number.NaN, undefined as unknown as number, -5, 0]) r.relayed(n);
  expect(collections).toBe(0);
  r.relayed(100);
  expect(collections).toBe(1);
});

test("the default window is 8 MiB, 50 ms apart, and collects for real", () => {
  expect(COLLECT_EVERY_BYTES).toBe(8 * 1024 * 1024);
  expect(MIN_INTERVAL_MS).toBe(50);
  const r = new RelayedBytes();
  expect(() => r.relayed(COLLECT_EVERY_BYTES)).not.toThrow();
});
