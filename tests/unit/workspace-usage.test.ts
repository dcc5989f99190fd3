/**
 * The workspace size figure when du cannot finish (the workspace keeps changing under
 * it): the 409 `changing` is answered again for a second rather than running a helper
 * per write, and metrics fall back to the last figure measured.
 */
import { expect, test } from "bun:test";
import { BayError } from "../../src/bay/errors.ts";
import { WorkspaceUsage } from "../../src/bay/domain/workspace-usage.ts";
import type { WorkspaceRecord } from "../../src/bay/store/workspace-store.ts";

const ws = { id: "ws-1", sizeLimitMb: 1 } as WorkspaceRecord;
const changing = () =>
  new BayError("conflict", "workspace keeps changing", {
    details: { reason: "changing" },
    internal: { helper_stderr: "du: fts_read failed" },
  });

/** A usage whose measurements answer, in turn, what `answers` holds (a number, or an error to throw); `clock` is its time. */
function usage(answers: Array<number | BayError>) {
  const clock = { now: 0 };
  let measured = 0;
  const u = new WorkspaceUsage({
    ttlMs: 5_000,
    now: () => clock.now,
    measure: async () => {
      const a = answers[measured++];
      if (a === undefined) throw new Error("measured more often than expected");
      if (a instanceof BayError) throw a;
      return a;
    },
  });
  return { u, clock, measured: () => measured };
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: BayError) => `${e.code}/${e.details.reason ?? ""}`,
  );

test("a measurement that failed as 'changing' is answered again for a second, then measured again", async () => {
  const { u, clock, measured } = usage([changing(), 42]);
  expect(await codeOf(u.used(ws))).toBe("conflict/changing");
  clock.now = 999;
  const again = await u.used(ws).catch((e: BayError) => e);
  expect(again).toBeInstanceOf(BayError);
  expect([(again as BayError).code, (again as BayError).details.reason]).toEqual(["conflict", "changing"]);
  // Its own error: the first one's log fields (the helper's words) are not logged again.
  expect(JSON.stringify((again as BayError).internal)).not.toContain("du: ");
  expect(measured()).toBe(1);
  clock.now = 1_000;
  expect(await u.used(ws)).toBe(42);
  expect(measured()).toBe(2);
});

test("any other failure is not kept: the next call measures again", async () => {
  const { u, measured } = usage([new BayError("internal_error", "helper failed"), 7]);
  expect(await codeOf(u.used(ws))).toBe("internal_error/");
  expect(await u.used(ws)).toBe(7);
  expect(measured()).toBe(2);
});

test("metrics answer the last figure (with Bay's writes since) while the workspace cannot be measured; limits do not", async () => {
  const { u, clock } = usage([100, changing(), changing()]);
  expect(await u.usedOrLast(ws)).toBe(100);
  u.added(ws.id, 5);
  clock.now = 10_000; // past the cache: measured again, and du fails
  expect(await u.usedOrLast(ws)).toBe(105);
  expect(await codeOf(u.headroom(ws))).toBe("conflict/changing");
  // With nothing measured before, there is nothing to fall back to.
  const fresh = usage([changing()]);
  expect(await codeOf(fresh.u.usedOrLast(ws))).toBe("conflict/changing");
  // Another failure is not hidden by the last figure.
  const broken = usage([100, new BayError("internal_error", "helper failed")]);
  await broken.u.used(ws);
  broken.clock.now = 10_000;
  expect(await codeOf(broken.u.usedOrLast(ws))).toBe("internal_error/");
});
