/**
 * A delete of a path ending in `/` (or `/.`) must find a directory, as `rm -r file/`
 * refuses a file ("Not a directory"): on a sandbox's files (through the fake Ship) and
 * on a workspace's (the data plane) alike, on the in-memory driver. The same on Docker
 * with the real Ship: tests/e2e/sandbox-capabilities.test.ts, tests/contract/volume-files.test.ts
 * and tests/ship/support/filesystem-cases.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { NOT_A_DIRECTORY_REASON } from "../../src/protocol/ship/constants.ts";
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
    for (const path of ["dir/file.txt/", "dir/file.txt/."]) {
      const r = await bay.json("DELETE", files(path), { owner: "alice" });
      expect({ path, status: r.status, code: r.body.error?.code, reason: r.body.error?.details?.reason }).toEqual({
        path,
        status: 400,
        code: "invalid_path",
        reason: NOT_A_DIRECTORY_REASON,
      });
    }
    expect((await bay.json("GET", files("dir/file.txt"), { owner: "alice" })).body.content).toBe("kept");
    expect((await bay.json("DELETE", files("nope/"), { owner: "alice" })).body.error?.code).toBe("file_not_found");
    expect((await bay.json("DELETE", files("dir/"), { owner: "alice" })).body).toEqual({ status: "ok" });
    expect((await bay.json("GET", files("dir/file.txt"), { owner: "alice" })).status).toBe(404);
  });
});
