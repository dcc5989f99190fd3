/** The idle deadline after a call (nextIdleDeadline): rewritten only once it drifted past its slack, never early. */
import { expect, test } from "bun:test";
import { nextIdleDeadline } from "../../src/bay/domain/capability-router.ts";

const now = 1_000_000;

test("no deadline known, or one that would reclaim early: now + idle_timeout + slack (5 %)", () => {
  const idle = 600_000; // slack 30 s (5 % of 10 min)
  expect(nextIdleDeadline(null, idle, now)).toBe(now + idle + 30_000);
  expect(nextIdleDeadline(now + idle - 1, idle, now)).toBe(now + idle + 30_000);
  expect(nextIdleDeadline(now, idle, now)).toBe(now + idle + 30_000);
});

test("a deadline within twice its slack after now + idle_timeout stays (no write)", () => {
  const idle = 600_000;
  expect(nextIdleDeadline(now + idle, idle, now)).toBeNull();
  expect(nextIdleDeadline(now + idle + 60_000, idle, now)).toBeNull();
});

test("a deadline further out than twice its slack is pulled in (a shorter idle_timeout applies)", () => {
  const idle = 600_000;
  expect(nextIdleDeadline(now + idle + 60_001, idle, now)).toBe(now + idle + 30_000);
});

test("the slack is 5 % of the idle timeout, at most 30 s", () => {
  expect(nextIdleDeadline(null, 60_000, now)).toBe(now + 60_000 + 3_000);
  expect(nextIdleDeadline(null, 3_600_000, now)).toBe(now + 3_600_000 + 30_000);
  expect(nextIdleDeadline(now + 60_000 + 6_000, 60_000, now)).toBeNull();
  expect(nextIdleDeadline(now + 60_000 + 6_001, 60_000, now)).toBe(now + 63_000);
});
