/**
 * BayError.withDetails: the copy an error gets when a caller rewrites what the client
 * is shown (onSentPath's details.path) keeps everything else of the error (class,
 * code, message, stack, cause, log fields, Retry-After) and leaves the original as it was.
 */
import { expect, test } from "bun:test";
import { BayError } from "../../src/bay/errors.ts";
import { onSentPath } from "../../src/bay/domain/paths.ts";
import { ShipTimeoutError } from "../../src/bay/runtime/errors/ship-timeout-error.ts";

test("a copy with other details keeps the class, stack, cause and log fields; the original is unchanged", () => {
  const cause = new Error("engine said no");
  const original = new BayError("file_not_found", "file not found", {
    details: { path: "/workspace/a/", kind: "file" },
    internal: { container: "c-1" },
    cause,
    retryAfter: 3,
  });
  const copy = original.withDetails({ ...original.details, path: "a//" });
  expect(copy).not.toBe(original);
  expect(copy).toBeInstanceOf(BayError);
  expect(copy.code).toBe("file_not_found");
  expect(copy.status).toBe(404);
  expect(copy.message).toBe("file not found");
  expect(copy.stack).toBe(original.stack);
  expect(copy.cause).toBe(cause);
  expect(copy.internal).toEqual({ container: "c-1" });
  expect(copy.retryAfter).toBe(3);
  expect(copy.details).toEqual({ path: "a//", kind: "file" });
  expect(original.details).toEqual({ path: "/workspace/a/", kind: "file" });
});

test("a subclass stays itself through onSentPath, with the path as sent", async () => {
  const original = new ShipTimeoutError(5_000);
  Object.assign(original.details, { path: "/workspace/x" });
  const thrown = await onSentPath("x//", () => Promise.reject(original)).catch((e: unknown) => e);
  expect(thrown).toBeInstanceOf(ShipTimeoutError);
  expect((thrown as BayError).details.path).toBe("x//");
  expect((thrown as BayError).stack).toBe(original.stack);
  expect(original.details.path).toBe("/workspace/x");
});

test("the copy is a real Error (review s41): branded, printed and cloned as one; a frozen original copies too", () => {
  const original = Object.freeze(new BayError("not_found", "gone", { details: { path: "/workspace/a" } }));
  const copy = original.withDetails({ path: "a" });
  expect(Object.prototype.toString.call(copy)).toBe("[object Error]");
  expect(structuredClone(copy).message).toBe("gone");
  expect(Bun.inspect(copy)).toContain("gone");
  expect(copy.details).toEqual({ path: "a" });
  expect(original.details).toEqual({ path: "/workspace/a" });
});
