/**
 * Workspaces through the API, without starting a Ship: external workspaces
 * (create, list with cursors, get, delete), managed ones as their sandbox
 * shows them, sandboxes created on an external workspace, owner scoping, and
 * the data plane's refusals that need no container (paths, unknown ids).
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { zWorkspace, zWorkspaceList } from "../../src/bay/api/generated/index.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { closeWithoutContainers, expectErrorBody, uploadForm } from "./support/fixtures.ts";

let t: TestBay;
beforeEach(async () => {
  t = await createTestBay();
});
afterEach(() => closeWithoutContainers(t));

async function createWs(body: Record<string, unknown> = {}, owner = "alice") {
  const r = await t.json("POST", "/v1/workspaces", { body, owner });
  expect(r.status).toBe(201);
  return zWorkspace.parse(r.body);
}

describe("external workspaces", () => {
  test("create: external, no sandbox, default or given size limit, never accessed", async () => {
    const ws = await createWs();
    expect(ws).toMatchObject({
      managed: false,
      sandbox_id: null,
      size_limit_mb: t.config.limits.workspace_size_limit_mb,
      last_accessed_at: null,
    });
    expect(ws.id).toMatch(/^ws-[0-9a-z]+$/);
    expect((await createWs({ size_limit_mb: 5 })).size_limit_mb).toBe(5);
    for (const body of [{ size_limit_mb: 0 }, { size_limit_mb: 1.5 }, { size_limit_mb: "1" }, { nope: 1 }]) {
      const r = await t.json("POST", "/v1/workspaces", { body });
      expectErrorBody(r.res, r.body, "validation_error");
    }
  });

  test("list: newest first, cursor pages, owner's only", async () => {
    const [a, b, c] = [(await createWs()).id, (await createWs()).id, (await createWs()).id];
    await createWs({}, "bob");
    const first = zWorkspaceList.parse((await t.json("GET", "/v1/workspaces?limit=2")).body);
    expect(first.items.map((w) => w.id)).toEqual([c, b]);
    expect(first.next_cursor).not.toBeNull();
    const second = zWorkspaceList.parse((await t.json("GET", `/v1/workspaces?limit=2&cursor=${first.next_cursor}`)).body);
    expect(second.items.map((w) => w.id)).toEqual([a]);
    expect(second.next_cursor).toBeNull();
    const bad = await t.json("GET", "/v1/workspaces?cursor=garbage!");
    expectErrorBody(bad.res, bad.body, "validation_error");
  });

  test("get and delete are owner-scoped; delete tombstones (then 404)", async () => {
    const ws = await createWs();
    for (const [method, owner] of [
      ["GET", "bob"],
      ["DELETE", "bob"],
    ] as const) {
      const r = await t.json(method, `/v1/workspaces/${ws.id}`, { owner });
      expectErrorBody(r.res, r.body, "not_found");
    }
    expect((await t.json("GET", "/v1/workspaces/ws-unknown")).status).toBe(404);
    expect((await t.call("DELETE", `/v1/workspaces/${ws.id}`)).status).toBe(204);
    expect((await t.json("GET", `/v1/workspaces/${ws.id}`)).status).toBe(404);
    expect((await t.json("DELETE", `/v1/workspaces/${ws.id}`)).status).toBe(404);
  });
});

describe("workspaces and sandboxes", () => {
  test("a managed workspace shows managed and its sandbox; 409 while the sandbox lives; goes with it", async () => {
    const sb = (await t.json("POST", "/v1/sandboxes", { body: {} })).body;
    const ws = zWorkspace.parse((await t.json("GET", `/v1/workspaces/${sb.workspace_id}`)).body);
    expect(ws).toMatchObject({ managed: true, sandbox_id: sb.id });
    expect(zWorkspaceList.parse((await t.json("GET", "/v1/workspaces")).body).items.map((w) => w.id)).toContain(ws.id);
    const del = await t.json("DELETE", `/v1/workspaces/${ws.id}`);
    expectErrorBody(del.res, del.body, "conflict");
    expect(del.body.error.details).toMatchObject({ workspace_id: ws.id, sandbox_id: sb.id });
    expect((await t.call("DELETE", `/v1/sandboxes/${sb.id}`)).status).toBe(204);
    expect((await t.json("GET", `/v1/workspaces/${ws.id}`)).status).toBe(404);
  });

  test("a sandbox on an external workspace: one live sandbox at a time, owner-scoped, workspace outlives it", async () => {
    const ws = await createWs();
    const created = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws.id } });
    expect(created.status).toBe(201);
    expect(created.body.workspace_id).toBe(ws.id);
    expect((await t.json("GET", `/v1/workspaces/${ws.id}`)).body.sandbox_id).toBe(created.body.id);

    const second = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws.id } });
    expectErrorBody(second.res, second.body, "conflict");
    const foreign = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws.id }, owner: "bob" });
    expectErrorBody(foreign.res, foreign.body, "not_found");
    const unknown = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: "ws-unknown" } });
    expectErrorBody(unknown.res, unknown.body, "not_found");
    expect((await t.json("DELETE", `/v1/workspaces/${ws.id}`)).body.error.code).toBe("conflict");

    expect((await t.call("DELETE", `/v1/sandboxes/${created.body.id}`)).status).toBe(204);
    expect((await t.json("GET", `/v1/workspaces/${ws.id}`)).body).toMatchObject({ managed: false, sandbox_id: null });
    // Free again: a new sandbox may use it.
    const again = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws.id } });
    expect(again.status).toBe(201);
    expect((await t.call("DELETE", `/v1/sandboxes/${again.body.id}`)).status).toBe(204);
    expect((await t.call("DELETE", `/v1/workspaces/${ws.id}`)).status).toBe(204);
  });
});

describe("data plane refusals", () => {
  const ops = (id: string, path: string) =>
    [
      ["GET", `/v1/workspaces/${id}/filesystem/files?path=${encodeURIComponent(path)}`, undefined],
      ["PUT", `/v1/workspaces/${id}/filesystem/files`, { path, content: "x" }],
      ["DELETE", `/v1/workspaces/${id}/filesystem/files?path=${encodeURIComponent(path)}`, undefined],
      ["GET", `/v1/workspaces/${id}/filesystem/directories?path=${encodeURIComponent(path)}`, undefined],
      ["GET", `/v1/workspaces/${id}/filesystem/download?path=${encodeURIComponent(path)}`, undefined],
      ["POST", `/v1/workspaces/${id}/filesystem/upload?path=${encodeURIComponent(path)}`, uploadForm(path)],
    ] as const;

  test.each(["../etc/passwd", "/etc/passwd", "a/../../x", "a\u0000b", "%2e%2e/x"])(
    "path %p → 400 invalid_path on every route",
    async (path) => {
      const ws = await createWs();
      for (const [method, url, body] of ops(ws.id, path)) {
        const r = await t.json(method, url, body === undefined ? {} : { body });
        expect({ method, url, code: r.body?.error?.code }).toEqual({ method, url, code: "invalid_path" });
      }
    },
  );

  test("unknown or foreign workspace → 404 not_found on every route", async () => {
    const ws = await createWs({}, "bob");
    for (const id of ["ws-unknown", ws.id]) {
      for (const [method, url, body] of ops(id, "a.txt")) {
        const r = await t.json(method, url, body === undefined ? {} : { body });
        expect({ method, url, status: r.status, code: r.body?.error?.code }).toEqual({ method, url, status: 404, code: "not_found" });
      }
    }
  });

  test("writing the root, or a text file over max_file_bytes, is refused", async () => {
    const ws = await createWs();
    const root = await t.json("PUT", `/v1/workspaces/${ws.id}/filesystem/files`, { body: { path: ".", content: "x" } });
    expectErrorBody(root.res, root.body, "invalid_path");
    const big = "x".repeat(t.config.limits.max_file_bytes + 1);
    const r = await t.json("PUT", `/v1/workspaces/${ws.id}/filesystem/files`, { body: { path: "big.txt", content: big } });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("payload_too_large");
  });
});
