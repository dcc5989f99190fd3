/**
 * The E2B envd file API and paths whose last segment is `.` or `..`: Remove and
 * Move refuse them as given (as rm and mv do), before the home-relative mapping
 * normalises `t/file/..` into `t`. Memory driver (fake Ship), real app and libSQL.
 */
import { afterEach, expect, test } from "bun:test";
import { createMemoryBay, e2bSandbox, type MemoryBay } from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

test("Remove and Move of a path ending in . or .. are refused and delete or move nothing", async () => {
  t = await createMemoryBay();
  const bay = t;
  const sb = await e2bSandbox(bay);
  const headers = { ...sb.auth, "content-type": "application/json" };
  const base = `/v1/sandboxes/${sb.id}/filesystem`;
  const rpc = async (method: string, body: unknown) => {
    const res = await bay.bay.app.request(`/e2b/filesystem.Filesystem/${method}`, { method: "POST", headers, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { code?: string; message?: string } };
  };
  const fileThere = async () => (await bay.json("GET", `${base}/files?path=t%2Ffile`, { owner: "alice" })).status === 200;
  expect((await bay.json("PUT", `${base}/files`, { body: { path: "t/file", content: "kept" }, owner: "alice" })).status).toBe(200);
  for (const path of ["/home/user/t/nonexistent/..", "/home/user/t/file/..", "/home/user/t/.", "t/file/..", "/home/user/t/file/../"]) {
    const r = await rpc("Remove", { path });
    expect({ path, status: r.status, code: r.body.code }).toEqual({ path, status: 400, code: "invalid_argument" });
    expect(r.body.message).toContain("refusing to remove '.' or '..'");
    expect(await fileThere()).toBe(true);
  }
  const moved = await rpc("Move", { source: "/home/user/t/file/..", destination: "/home/user/elsewhere" });
  expect(moved.status).toBe(400);
  expect(await fileThere()).toBe(true);
  // What it names plainly is still removed.
  expect((await rpc("Remove", { path: "/home/user/t" })).status).toBe(200);
  expect(await fileThere()).toBe(false);
});
