/**
 * A delete of a path ending in `/` must find a directory, as `rm -r file/` refuses a
 * file ("Not a directory"), and one ending in `.` or `..` is refused outright, as rm
 * refuses it ("refusing to remove '.' or '..' directory"): on a sandbox's files (through
 * the fake Ship) and on a workspace's (the data plane) alike, on the in-memory driver.
 * The same on Docker with the real Ship: tests/e2e/sandbox-capabilities.test.ts,
 * tests/e2e/workspaces-data-plane.test.ts, tests/contract/volume-files.test.ts and
 * tests/ship/support/filesystem-cases.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { DOT_SEGMENT_REASON, NOT_A_DIRECTORY_REASON } from "../../src/protocol/ship/constants.ts";
import { createMemoryBay, type MemoryBay, newSandbox } from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

async function filesBase(kind: "sandbox" | "workspace"): Promise<string> {
  t = await createMemoryBay();
  if (kind === "sandbox") return `/v1/sandboxes/${await newSandbox(t)}/filesystem`;
  const ws = await t.json("POST", "/v1/workspaces", { body: {}, owner: "alice" });
  expect(ws.status).toBe(201);
  return `/v1/workspaces/${ws.body.id}/filesystem`;
}

describe.each([["sandbox" as const], ["workspace" as const]])("DELETE on a %s's files", (kind) => {
  test("`file.txt/` is refused as not a directory and the file stays; `dir/` deletes the directory", async () => {
    const base = await filesBase(kind);
    const bay = t!;
    const files = (path: string) => `${base}/files?path=${encodeURIComponent(path)}`;
    expect((await bay.json("PUT", `${base}/files`, { body: { path: "dir/file.txt", content: "kept" }, owner: "alice" })).status).toBe(200);
    expect(
      (await bay.json("PUT", `${base}/files`, { body: { path: "dir/sub/file.txt", content: "kept too" }, owner: "alice" })).status,
    ).toBe(200);
    for (const path of ["dir/file.txt/", "dir/sub/file.txt/"]) {
      const r = await bay.json("DELETE", files(path), { owner: "alice" });
      expect({ path, status: r.status, code: r.body.error?.code, reason: r.body.error?.details?.reason }).toEqual({
        path,
        status: 400,
        code: "invalid_path",
        reason: NOT_A_DIRECTORY_REASON,
      });
    }
    expect((await bay.json("GET", files("dir/file.txt"), { owner: "alice" })).body.content).toBe("kept");
    expect((await bay.json("GET", files("dir/sub/file.txt"), { owner: "alice" })).body.content).toBe("kept too");
    expect((await bay.json("DELETE", files("nope/"), { owner: "alice" })).body.error?.code).toBe("file_not_found");
    expect((await bay.json("DELETE", files("dir/"), { owner: "alice" })).body).toEqual({ status: "ok" });
    expect((await bay.json("GET", files("dir/file.txt"), { owner: "alice" })).status).toBe(404);
  });

  test("a path ending in `.` or `..` is refused as rm refuses it, before anything is deleted", async () => {
    const base = await filesBase(kind);
    const bay = t!;
    const files = (path: string) => `${base}/files?path=${encodeURIComponent(path)}`;
    expect((await bay.json("PUT", `${base}/files`, { body: { path: "t/file", content: "kept" }, owner: "alice" })).status).toBe(200);
    expect((await bay.json("PUT", `${base}/files`, { body: { path: "t/sub/x", content: "x" }, owner: "alice" })).status).toBe(200);
    // `t/file/..` normalises to `t`: deleting it would remove the whole directory.
    for (const path of ["t/file/..", "t/sub/..", "t/.", "t/./", "t/sub/../", "t/file/."]) {
      const r = await bay.json("DELETE", files(path), { owner: "alice" });
      expect({ path, status: r.status, code: r.body.error?.code, details: r.body.error?.details }).toEqual({
        path,
        status: 400,
        code: "invalid_path",
        details: { path, reason: DOT_SEGMENT_REASON },
      });
      expect(r.body.error.message).toContain("refusing to remove '.' or '..' directory");
    }
    expect((await bay.json("GET", files("t/file"), { owner: "alice" })).body.content).toBe("kept");
    expect((await bay.json("GET", files("t/sub/x"), { owner: "alice" })).body.content).toBe("x");
    // `..` inside the path is still fine: what it names is what it spells.
    expect((await bay.json("DELETE", files("t/sub/../file"), { owner: "alice" })).body).toEqual({ status: "ok" });
    expect((await bay.json("GET", files("t/file"), { owner: "alice" })).status).toBe(404);
    expect((await bay.json("GET", files("t/sub/x"), { owner: "alice" })).body.content).toBe("x");
  });
});
