/**
 * An error about a file path names, in `details.path`, the path the client sent: not
 * the form Bay normalised it to, nor the one it forwarded (a delete of `f.txt/` goes to
 * Ship as `f.txt/`, to the data plane as `f.txt` with `directory`), so a trailing or a
 * doubled slash is kept, on a sandbox's files (through the fake Ship) and on a
 * workspace's (the data plane) alike, from one table. A path longer than 256 characters
 * is shown cut to its first 256, as Bay's path rule always showed a refused one; a path
 * with a NUL, a newline or a percent-encoded byte is still refused by that rule.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { NOT_A_DIRECTORY_REASON } from "../../src/protocol/ship/constants.ts";
import { createMemoryBay, type MemoryBay, newSandbox } from "./support/memory-bay.ts";

type Op = "read" | "list" | "download" | "delete" | "write" | "upload";

/** 280 characters, 26 segments: a valid path, longer than an error shows. */
const LONG = `${"abcdefghij/".repeat(25)}nope/`;

/** [operation, path as sent, status, code, reason (for invalid_path), details.path expected]. */
const CASES: Array<[Op, string, number, string, string | undefined, string]> = [
  ["read", "nope/", 404, "file_not_found", undefined, "nope/"],
  ["read", "d//nope", 404, "file_not_found", undefined, "d//nope"],
  ["list", "d//nope/", 404, "file_not_found", undefined, "d//nope/"],
  ["download", "./d/nope", 404, "file_not_found", undefined, "./d/nope"],
  ["delete", "d/nope/", 404, "file_not_found", undefined, "d/nope/"],
  ["delete", "d/f.txt/", 400, "invalid_path", NOT_A_DIRECTORY_REASON, "d/f.txt/"],
  ["delete", "d//f.txt/", 400, "invalid_path", NOT_A_DIRECTORY_REASON, "d//f.txt/"],
  ["read", "d//f.txt/x", 400, "invalid_path", "a parent is not a directory", "d//f.txt/x"],
  ["list", "d//f.txt", 400, "validation_error", undefined, "d//f.txt"],
  ["read", "d//sub/", 400, "validation_error", undefined, "d//sub/"],
  ["write", "d//sub", 400, "validation_error", undefined, "d//sub"],
  ["upload", "d//sub", 400, "validation_error", undefined, "d//sub"],
  ["read", LONG, 404, "file_not_found", undefined, LONG.slice(0, 256)],
  // Refused by Bay's path rule before anything runs, as sent (unchanged).
  ["read", "a\nb/", 400, "invalid_path", "contains a NUL or control character", "a\nb/"],
  ["delete", "a%00/", 400, "invalid_path", "contains percent-encoded path characters", "a%00/"],
  ["write", "a\u0000b", 400, "invalid_path", "contains a NUL or control character", "a\u0000b"],
];

describe.each([["sandbox" as const], ["workspace" as const]])("%s files: details.path is the path as sent", (kind) => {
  let t: MemoryBay;
  let base: string;
  beforeAll(async () => {
    t = await createMemoryBay();
    if (kind === "sandbox") base = `/v1/sandboxes/${await newSandbox(t)}/filesystem`;
    else base = `/v1/workspaces/${(await t.json("POST", "/v1/workspaces", { body: {}, owner: "alice" })).body.id}/filesystem`;
    for (const path of ["d/f.txt", "d/sub/x"]) {
      expect((await t.json("PUT", `${base}/files`, { body: { path, content: "x" }, owner: "alice" })).status).toBe(200);
    }
  });
  afterAll(async () => {
    await t.close();
    t.engine.shutdown();
  });

  const send = (op: Op, path: string) => {
    const q = `?path=${encodeURIComponent(path)}`;
    switch (op) {
      case "read":
        return t.json("GET", `${base}/files${q}`);
      case "list":
        return t.json("GET", `${base}/directories${q}`);
      case "download":
        return t.json("GET", `${base}/download${q}`);
      case "delete":
        return t.json("DELETE", `${base}/files${q}`);
      case "write":
        return t.json("PUT", `${base}/files`, { body: { path, content: "y" } });
      case "upload": {
        const form = new FormData();
        form.append("path", path);
        form.append("file", new Blob(["y"]), "y.txt");
        return t.json("POST", `${base}/upload`, { body: form });
      }
    }
  };

  test.each(CASES)("%s %p → %d %s", async (op, path, status, code, reason, shown) => {
    const r = await send(op, path);
    const error = r.body.error;
    expect({ op, path, status: r.status, code: error?.code, reason: error?.details?.reason, shown: error?.details?.path }).toEqual({
      op,
      path,
      status,
      code,
      reason,
      shown,
    });
  });

  test("nothing in the table changed the files", async () => {
    expect((await t.json("GET", `${base}/files?path=d/f.txt`)).body.content).toBe("x");
    expect((await t.json("GET", `${base}/files?path=d/sub/x`)).body.content).toBe("x");
  });
});
