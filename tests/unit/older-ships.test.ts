/** E2B runCode on Ships that take at most 300 s (src/bay/e2b/older-ships.ts): the retry, and what is remembered. */
import { expect, test } from "bun:test";
import { OLDER_SHIP_MAX_TIMEOUT_SECONDS, OlderShips, REMEMBER_MS } from "../../src/bay/e2b/older-ships.ts";
import { BayError } from "../../src/bay/errors.ts";

const refusal = () =>
  new BayError("validation_error", "invalid json: timeout: Too big", { details: { issues: [{ path: "timeout", message: "Too big" }] } });

/** A Ship taking at most `max` s: the timeouts it was sent. */
function ship(max: number) {
  const sent: number[] = [];
  const run = async (timeout: number) => {
    sent.push(timeout);
    if (timeout > max) throw refusal();
    return "ran";
  };
  return { sent, run };
}

test("an older Ship's refusal is retried once with 300 s, and its sandbox's next runs go with 300 s at once until REMEMBER_MS passes", async () => {
  let now = 1_000_000;
  const older = new OlderShips(() => now);
  const s = ship(OLDER_SHIP_MAX_TIMEOUT_SECONDS);
  expect(await older.run("sb-1", 86_400, s.run)).toBe("ran");
  expect(s.sent).toEqual([86_400, 300]);
  expect(await older.run("sb-1", 86_400, s.run)).toBe("ran");
  expect(s.sent).toEqual([86_400, 300, 300]);
  // Another sandbox is not taken for an older one.
  const other = ship(86_400);
  await older.run("sb-2", 86_400, other.run);
  expect(other.sent).toEqual([86_400]);
  now += REMEMBER_MS + 1;
  await older.run("sb-1", 86_400, s.run);
  expect(s.sent).toEqual([86_400, 300, 300, 86_400, 300]);
});

test("a current Ship gets the whole timeout; other errors, and refusals of a timeout of 300 s or less, are not retried", async () => {
  const older = new OlderShips();
  const current = ship(86_400);
  await older.run("sb-1", 86_400, current.run);
  expect(current.sent).toEqual([86_400]);
  const sent: number[] = [];
  const failing = (e: Error) => async (timeout: number) => {
    sent.push(timeout);
    throw e;
  };
  const other = new BayError("validation_error", "invalid json: code", { details: { issues: [{ path: "code", message: "x" }] } });
  await expect(older.run("sb-3", 86_400, failing(other))).rejects.toBe(other);
  await expect(older.run("sb-3", 86_400, failing(new BayError("not_found", "no context")))).rejects.toThrow("no context");
  expect(sent).toEqual([86_400, 86_400]);
  // Already at 300: a refusal is the caller's, not an older Ship's.
  const at300 = refusal();
  await expect(older.run("sb-4", 300, failing(at300))).rejects.toBe(at300);
  expect(sent).toEqual([86_400, 86_400, 300]);
});
