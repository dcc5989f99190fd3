/**
 * Owner isolation, table-driven over every operation of the spec: bob asking
 * for alice's sandbox or workspace gets 404 not_found (never 403, never 2xx),
 * and alice's resource is left exactly as it was, with no compute started.
 * Iterating the generated operation table means a new route cannot be missed.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";
import {
  closeWithoutContainers,
  expectErrorBody,
  instanceContainers,
  OPS,
  resourceOf,
  snapshotRows,
  validRequest,
} from "./support/fixtures.ts";

let t: TestBay;
let aliceSandbox: { id: string; workspace_id: string };
let aliceWorkspace: string;

beforeEach(async () => {
  t = await createTestBay();
  const sb = await t.json("POST", "/v1/sandboxes", { body: { ttl: 3600 }, owner: "alice" });
  expect(sb.status).toBe(201);
  aliceSandbox = sb.body;
  const ws = await t.json("POST", "/v1/workspaces", { body: {}, owner: "alice" });
  expect(ws.status).toBe(201);
  aliceWorkspace = ws.body.id;
  // bob exists too, with his own resources.
  expect((await t.json("POST", "/v1/sandboxes", { body: {}, owner: "bob" })).status).toBe(201);
});
afterEach(() => closeWithoutContainers(t));

const ID_OPS = OPS.filter((op) => resourceOf(op) !== null);

describe("bob cannot reach alice's resources", () => {
  test("the table covers every {id} operation of the spec", () => {
    expect(ID_OPS.length).toBe(OPS.filter((op) => op.path.includes("{id}")).length);
    expect(ID_OPS.length).toBeGreaterThan(20);
  });

  for (const op of ID_OPS) {
    test(`${op.operationId} (${op.method.toUpperCase()} ${op.path}) → 404 not_found, alice's ${resourceOf(op)} untouched`, async () => {
      const id = resourceOf(op) === "workspace" ? aliceWorkspace : aliceSandbox.id;
      const resourcePath = resourceOf(op) === "workspace" ? `/v1/workspaces/${id}` : `/v1/sandboxes/${id}`;
      const before = await t.json("GET", resourcePath, { owner: "alice" });
      expect(before.status).toBe(200);
      const rows = await snapshotRows(t);

      const req = validRequest(op, id);
      const r = await t.json(req.method, req.path, { body: req.body, owner: "bob" });
      expect({ op: op.operationId, status: r.status }).toEqual({ op: op.operationId, status: 404 });
      expectErrorBody(r.res, r.body, "not_found");
      // No existence leak: the message is the same as for an id that never existed.
      const ghost = validRequest(op, resourceOf(op) === "workspace" ? "ws-ghost00000000000000" : "sandbox-ghost0000000000");
      const g = await t.json(ghost.method, ghost.path, { body: ghost.body, owner: "bob" });
      expect(g.status).toBe(404);
      expect(Object.keys(g.body.error.details).sort()).toEqual(Object.keys(r.body.error.details).sort());

      const after = await t.json("GET", resourcePath, { owner: "alice" });
      expect(after.status).toBe(200);
      expect(after.body).toEqual(before.body);
      expect(await snapshotRows(t)).toBe(rows);
      expect(await instanceContainers(t)).toEqual([]);
    });
  }

  test("bob cannot mount alice's workspace into a new sandbox", async () => {
    const rows = await snapshotRows(t);
    const r = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: aliceWorkspace }, owner: "bob" });
    expect(r.status).toBe(404);
    expectErrorBody(r.res, r.body, "not_found");
    expect(await snapshotRows(t)).toBe(rows);
  });

  test("bob's Idempotency-Key does not replay alice's response", async () => {
    const a = await t.json("POST", "/v1/workspaces", { body: {}, owner: "alice", headers: { "idempotency-key": "shared-key" } });
    const b = await t.json("POST", "/v1/workspaces", { body: {}, owner: "bob", headers: { "idempotency-key": "shared-key" } });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.res.headers.get("idempotent-replayed")).toBeNull();
  });
});

describe("lists never show another owner's items", () => {
  const LIST_OPS = OPS.filter(
    (op) => op.method === "get" && !op.path.includes("{") && op.path.startsWith("/v1/") && op.operationId !== "listProfiles",
  );

  test("the table covers the list operations", () => {
    expect(LIST_OPS.map((o) => o.operationId).sort()).toEqual(["listSandboxes", "listWorkspaces"]);
  });

  for (const op of LIST_OPS) {
    test(`${op.operationId}: bob sees only his own`, async () => {
      const bob = await t.json("GET", op.path, { owner: "bob" });
      expect(bob.status).toBe(200);
      const text = JSON.stringify(bob.body);
      for (const aliceId of [aliceSandbox.id, aliceSandbox.workspace_id, aliceWorkspace]) expect(text).not.toContain(aliceId);
      expect(bob.body.items.length).toBeGreaterThan(0);
      const alice = await t.json("GET", op.path, { owner: "alice" });
      const aliceIds = alice.body.items.map((i: { id: string }) => i.id);
      for (const item of bob.body.items) expect(aliceIds).not.toContain(item.id);
    });
  }

  test("a cursor taken from alice's list shows bob nothing of alice's", async () => {
    for (let i = 0; i < 3; i++) await t.json("POST", "/v1/sandboxes", { body: {}, owner: "alice" });
    const page = await t.json("GET", "/v1/sandboxes?limit=1", { owner: "alice" });
    expect(page.body.next_cursor).toBeTruthy();
    const bob = await t.json("GET", `/v1/sandboxes?cursor=${page.body.next_cursor}`, { owner: "bob" });
    expect(bob.status).toBe(200);
    const alice = await t.json("GET", "/v1/sandboxes", { owner: "alice" });
    const aliceIds = new Set(alice.body.items.map((i: { id: string }) => i.id));
    for (const item of bob.body.items) expect(aliceIds.has(item.id)).toBe(false);
  });
});
