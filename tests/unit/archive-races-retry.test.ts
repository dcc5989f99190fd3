/**
 * retryRaced (src/bay/drivers/docker/archive-races.ts): a workspace read, stat or write
 * walk that the engine fails under a sandbox's symlink swap is tried again, and when every
 * attempt met an entry changing under the engine, the answer is the path's refusal
 * (invalid_path), never an internal error; any other failure is left as it was.
 * The race itself, on a real engine: tests/e2e/workspace-swap-race.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { RACED_ATTEMPTS, retryRaced } from "../../src/bay/drivers/docker/archive-races.ts";
import { BayError } from "../../src/bay/errors.ts";

const engine500 = (message: string) =>
  new BayError("internal_error", "workspace read failed", { internal: { engine_message: message, engine_status: 500 } });

function failing(errors: unknown[], value = "ok") {
  let calls = 0;
  const fn = async () => {
    const e = errors[calls++];
    if (e === undefined) return value;
    throw e;
  };
  return { fn, calls: () => calls };
}

describe("retryRaced", () => {
  test("an entry changing under the engine on every attempt is the path's refusal, with what the engine said kept for the log", async () => {
    for (const message of [
      "readlink /var/lib/docker/overlay2/x/merged/workspace/d: invalid argument",
      "lstat /var/lib/docker/overlay2/x/merged/workspace/d/etc: not a directory",
      "open /var/lib/docker/overlay2/x/merged/workspace/d: too many levels of symbolic links",
    ]) {
      const f = failing(Array.from({ length: RACED_ATTEMPTS }, () => engine500(message)));
      const err = (await retryRaced(f.fn, "d/etc/passwd", "read").catch((e) => e)) as BayError;
      expect(f.calls()).toBe(RACED_ATTEMPTS);
      expect(err).toBeInstanceOf(BayError);
      expect(err.code).toBe("invalid_path");
      expect(err.status).toBe(400);
      expect(err.details).toEqual({ path: "d/etc/passwd", reason: "changed during the read" });
      expect(err.internal).toMatchObject({ operation: "workspace read", engine_message: message, attempts: RACED_ATTEMPTS });
    }
  });

  test("an engine or host fault that names none of the path's entries stays an internal error (reviews s66, s67)", async () => {
    for (const [path, message] of [
      ["d/etc/passwd", "readlink /var/lib/docker/overlay2/l/ABCDEF: invalid argument"],
      ["d/etc/passwd", "error while mounting volume '/var/lib/docker/volumes/v/_data': mount: not a directory"],
      ["a/b", "lstat /var/lib/docker/overlay2/x/merged/workspace/ab: not a directory"],
      ["a/b", "lstat /var/lib/docker/overlay2/x/merged/workspace/a/bc: not a directory"],
      // The words in the path's own name (review s67), or a host path that happens to lie under /workspace.
      ["notes - not a directory.txt", "lstat /var/lib/docker/overlay2/x/merged/workspace/notes - not a directory.txt: input/output error"],
      [
        "a/too many levels of symbolic links",
        "lstat /var/lib/docker/overlay2/x/merged/workspace/a/too many levels of symbolic links: stale file handle",
      ],
      [".docker-root/overlay2/l/ABCDEF", "readlink /workspace/.docker-root/overlay2/l/ABCDEF: invalid argument"],
      ["d", "open /var/lib/docker/overlay2/x/merged/workspace/d: invalid argument"],
    ] as const) {
      const last = engine500(message);
      const f = failing([engine500(message), engine500(message), last]);
      expect(await retryRaced(f.fn, path, "read").catch((e) => e)).toBe(last);
    }
  });

  test("an attempt that gets through answers, whatever the ones before met", async () => {
    const f = failing([engine500("readlink /w/d: invalid argument")], "bytes");
    expect(await retryRaced(f.fn, "d", "stat")).toBe("bytes");
    expect(f.calls()).toBe(2);
  });

  test("an engine failure that names no changing entry stays an internal error after its attempts", async () => {
    const last = engine500("error creating overlay mount: no space left on device");
    const f = failing([engine500("x"), engine500("y"), last]);
    expect(await retryRaced(f.fn, "d", "write").catch((e) => e)).toBe(last);
    expect(f.calls()).toBe(RACED_ATTEMPTS);
  });

  test("a failure that is no race (a refusal, a timeout, any other error) is not tried again", async () => {
    for (const e of [
      new BayError("file_not_found", "no such file"),
      new BayError("timeout", "the engine did not answer"),
      new BayError("internal_error", "other", { internal: { engine_status: 404 } }),
      new Error("boom"),
    ]) {
      const f = failing([e, e, e]);
      expect(await retryRaced(f.fn, "d", "read").catch((x) => x)).toBe(e);
      expect(f.calls()).toBe(1);
    }
  });
});
