/**
 * The error model, table-driven: every bad request answers the one error body
 * with the right status and code, and leaves the database exactly as it was.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { closeWithoutContainers, countRows, expectErrorBody, snapshotRows } from "./support/fixtures.ts";

const MAX_BODY = 512;

let t: TestBay;
/** An idle sandbox of alice's, created before each case. */
let sb: string;

beforeEach(async () => {
  t = await createTestBay({ config: { limits: { max_body_bytes: MAX_BODY } } });
  const r = await t.json("POST", "/v1/sandboxes", { body: {} });
  expect(r.status).toBe(201);
  sb = r.body.id;
});
afterEach(() => closeWithoutContainers(t));

interface Case {
  name: string;
  method: string;
  /** `:sb` is replaced by the pre-created sandbox's id. */
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const JSON_CT = { "content-type": "application/json" };

const CASES: Case[] = [
  {
    name: "malformed JSON",
    method: "POST",
    path: "/v1/sandboxes",
    body: '{"profile": ',
    headers: JSON_CT,
    status: 400,
    code: "validation_error",
  },
  {
    name: "JSON that is not an object",
    method: "POST",
    path: "/v1/sandboxes",
    body: '"just a string"',
    headers: JSON_CT,
    status: 400,
    code: "validation_error",
  },
  { name: "ttl as a string", method: "POST", path: "/v1/sandboxes", body: { ttl: "60" }, status: 400, code: "validation_error" },
  { name: "profile as a number", method: "POST", path: "/v1/sandboxes", body: { profile: 5 }, status: 400, code: "validation_error" },
  { name: "ttl negative", method: "POST", path: "/v1/sandboxes", body: { ttl: -1 }, status: 400, code: "validation_error" },
  { name: "ttl fractional", method: "POST", path: "/v1/sandboxes", body: { ttl: 1.5 }, status: 400, code: "validation_error" },
  {
    name: "unknown field on create",
    method: "POST",
    path: "/v1/sandboxes",
    body: { profile: "python-default", colour: "red" },
    status: 400,
    code: "validation_error",
  },
  {
    name: "unknown profile",
    method: "POST",
    path: "/v1/sandboxes",
    body: { profile: "no-such-profile" },
    status: 400,
    code: "validation_error",
  },
  { name: "empty profile", method: "POST", path: "/v1/sandboxes", body: { profile: "" }, status: 400, code: "validation_error" },
  {
    name: "unknown workspace_id",
    method: "POST",
    path: "/v1/sandboxes",
    body: { workspace_id: "ws-nope0000000000" },
    status: 404,
    code: "not_found",
  },
  {
    name: "malformed Idempotency-Key",
    method: "POST",
    path: "/v1/sandboxes",
    body: {},
    headers: { "idempotency-key": "a key with spaces" },
    status: 400,
    code: "validation_error",
  },
  {
    name: "Idempotency-Key over 128 chars",
    method: "POST",
    path: "/v1/sandboxes",
    body: {},
    headers: { "idempotency-key": "k".repeat(129) },
    status: 400,
    code: "validation_error",
  },
  {
    name: "malformed X-Owner",
    method: "GET",
    path: "/v1/sandboxes",
    headers: { "x-owner": "bad owner!" },
    status: 400,
    code: "validation_error",
  },
  {
    name: "extend_ttl missing extend_by",
    method: "POST",
    path: "/v1/sandboxes/:sb/extend_ttl",
    body: {},
    status: 400,
    code: "validation_error",
  },
  { name: "extend_ttl without a body", method: "POST", path: "/v1/sandboxes/:sb/extend_ttl", status: 400, code: "validation_error" },
  {
    name: "extend_ttl zero",
    method: "POST",
    path: "/v1/sandboxes/:sb/extend_ttl",
    body: { extend_by: 0 },
    status: 400,
    code: "validation_error",
  },
  {
    name: "extend_ttl unknown field",
    method: "POST",
    path: "/v1/sandboxes/:sb/extend_ttl",
    body: { extend_by: 10, also: 1 },
    status: 400,
    code: "validation_error",
  },
  {
    name: "python exec missing code",
    method: "POST",
    path: "/v1/sandboxes/:sb/python/exec",
    body: {},
    status: 400,
    code: "validation_error",
  },
  {
    name: "python exec timeout 0",
    method: "POST",
    path: "/v1/sandboxes/:sb/python/exec",
    body: { code: "1", timeout: 0 },
    status: 400,
    code: "validation_error",
  },
  {
    name: "python exec timeout 301",
    method: "POST",
    path: "/v1/sandboxes/:sb/python/exec",
    body: { code: "1", timeout: 301 },
    status: 400,
    code: "validation_error",
  },
  {
    name: "shell exec command not a string",
    method: "POST",
    path: "/v1/sandboxes/:sb/shell/exec",
    body: { command: ["ls"] },
    status: 400,
    code: "validation_error",
  },
  {
    name: "shell exec absolute cwd",
    method: "POST",
    path: "/v1/sandboxes/:sb/shell/exec",
    body: { command: "true", cwd: "/etc" },
    status: 400,
    code: "invalid_path",
  },
  {
    name: "write file unknown field",
    method: "PUT",
    path: "/v1/sandboxes/:sb/filesystem/files",
    body: { path: "a", content: "x", mode: 777 },
    status: 400,
    code: "validation_error",
  },
  { name: "read file without path", method: "GET", path: "/v1/sandboxes/:sb/filesystem/files", status: 400, code: "validation_error" },
  {
    name: "read file escaping /workspace",
    method: "GET",
    path: "/v1/sandboxes/:sb/filesystem/files?path=a/../../etc/passwd",
    status: 400,
    code: "invalid_path",
  },
  {
    name: "upload that is not multipart",
    method: "POST",
    path: "/v1/sandboxes/:sb/filesystem/upload",
    body: { path: "a" },
    status: 400,
    code: "validation_error",
  },
  { name: "limit 0", method: "GET", path: "/v1/sandboxes?limit=0", status: 400, code: "validation_error" },
  { name: "limit 201", method: "GET", path: "/v1/sandboxes?limit=201", status: 400, code: "validation_error" },
  { name: "limit abc", method: "GET", path: "/v1/sandboxes?limit=abc", status: 400, code: "validation_error" },
  { name: "limit 1.5", method: "GET", path: "/v1/sandboxes?limit=1.5", status: 400, code: "validation_error" },
  { name: "unknown status filter", method: "GET", path: "/v1/sandboxes?status=sleeping", status: 400, code: "validation_error" },
  { name: "cursor that is not base64url of an id", method: "GET", path: "/v1/sandboxes?cursor=!!!", status: 400, code: "validation_error" },
  {
    name: "cursor of a non-id",
    method: "GET",
    path: `/v1/sandboxes?cursor=${Buffer.from("' OR 1=1 --").toString("base64url")}`,
    status: 400,
    code: "validation_error",
  },
  { name: "workspace list bad cursor", method: "GET", path: "/v1/workspaces?cursor=%2F%2F", status: 400, code: "validation_error" },
  {
    name: "workspace size_limit_mb wrong type",
    method: "POST",
    path: "/v1/workspaces",
    body: { size_limit_mb: "big" },
    status: 400,
    code: "validation_error",
  },
  {
    name: "body over limits.max_body_bytes",
    method: "POST",
    path: "/v1/sandboxes",
    body: JSON.stringify({ profile: "x".repeat(MAX_BODY) }),
    headers: JSON_CT,
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "exec body over limits.max_body_bytes",
    method: "POST",
    path: "/v1/sandboxes/:sb/python/exec",
    body: { code: "x".repeat(MAX_BODY * 2) },
    status: 413,
    code: "payload_too_large",
  },
  { name: "unknown id", method: "GET", path: "/v1/sandboxes/sandbox-nope0000000000", status: 404, code: "not_found" },
  { name: "unknown route under /v1", method: "GET", path: "/v1/nothing-here", status: 404, code: "not_found" },
  { name: "unknown route outside /v1", method: "GET", path: "/nothing-here", status: 404, code: "not_found" },
  { name: "wrong method on a collection", method: "PATCH", path: "/v1/sandboxes", body: {}, status: 405, code: "method_not_allowed" },
  { name: "wrong method on an item", method: "PUT", path: "/v1/sandboxes/:sb", body: {}, status: 405, code: "method_not_allowed" },
];

describe("error model", () => {
  for (const c of CASES) {
    test(`${c.name} → ${c.status} ${c.code}, database unchanged`, async () => {
      const before = await snapshotRows(t);
      const counts = await countRows(t);
      const r = await t.json(c.method, c.path.replace(":sb", sb), { body: c.body, headers: c.headers });
      expect(r.status).toBe(c.status);
      expectErrorBody(r.res, r.body, c.code);
      expect(await countRows(t)).toEqual(counts);
      expect(await snapshotRows(t)).toBe(before);
    });
  }

  test("an allowed method on the path with a trailing slash is 404, not a 405 that names the same method", async () => {
    // (`/docs/` is the exception: it redirects to the page, below.)
    for (const path of ["/health/", "/openapi.json/", `/v1/sandboxes/${sb}/`]) {
      const r = await t.json("GET", path);
      expect({ path, status: r.status }).toEqual({ path, status: 404 });
      expectErrorBody(r.res, r.body, "not_found");
      expect(r.res.headers.get("allow")).toBeNull();
    }
  });

  test("GET /docs/ redirects (308) to the page by a relative Location, the query kept; other methods there are 404", async () => {
    for (const [path, location] of [
      ["/docs/", "../docs"],
      ["/docs/?x=1", "../docs?x=1"],
    ] as const) {
      const r = await t.call("GET", path);
      expect({ path, status: r.status, location: r.headers.get("location") }).toEqual({ path, status: 308, location });
      expect(new URL(location, `http://bay.test${path}`).pathname).toBe("/docs");
    }
    const post = await t.json("POST", "/docs/", { body: {} });
    expect(post.status).not.toBe(308);
    expectErrorBody(post.res, post.body);
  });

  test("405 names the allowed methods in Allow", async () => {
    const r = await t.json("PATCH", `/v1/sandboxes/${sb}`, { body: {} });
    expect(r.status).toBe(405);
    const allow = (r.res.headers.get("allow") ?? "").split(/,\s*/).sort();
    expect(allow).toEqual(["DELETE", "GET"]);
  });

  test("a validation error lists the failing field", async () => {
    const r = await t.json("POST", "/v1/sandboxes", { body: { ttl: -5 } });
    const err = expectErrorBody(r.res, r.body, "validation_error");
    if (err.error.code !== "validation_error") throw new Error(`expected validation_error, got ${err.error.code}`);
    // Narrowed on the discriminator: details is ValidationError's, with typed issues.
    expect((err.error.details.issues ?? []).map((i) => i.path)).toContain("json.ttl");
  });
});

describe("unexpected exceptions", () => {
  const SECRET = "SECRET-INTERNAL-DETAIL /var/lib/bay/bay.db";

  test("a throwing store answers 500 internal_error without message or stack", async () => {
    const before = await snapshotRows(t);
    const store = t.bay.deps.stores.sandboxes;
    store.findLive = async () => {
      throw new Error(SECRET);
    };
    const r = await t.json("GET", `/v1/sandboxes/${sb}`);
    expect(r.status).toBe(500);
    const err = expectErrorBody(r.res, r.body, "internal_error");
    const text = await r.res.text();
    expect(text).not.toContain("SECRET");
    expect(text).not.toContain("/var/lib");
    expect(text).not.toMatch(/\bat .*\.ts:\d+/);
    expect(err.error.details).toEqual({});
    expect(await snapshotRows(t)).toBe(before);
  });

  test("a failing write during create answers 500 and leaves no partial rows", async () => {
    const before = await snapshotRows(t);
    const db = t.bay.deps.stores.db;
    const realBatch = db.batch.bind(db);
    db.batch = (async () => {
      throw new Error(SECRET);
    }) as typeof db.batch;
    try {
      const r = await t.json("POST", "/v1/sandboxes", { body: {} });
      expect(r.status).toBe(500);
      expectErrorBody(r.res, r.body, "internal_error");
      expect(JSON.stringify(r.body)).not.toContain("SECRET");
    } finally {
      db.batch = realBatch;
    }
    expect(await snapshotRows(t)).toBe(before);
  });

  test("a closed database answers 500 internal_error, not a leaked libSQL message", async () => {
    t.bay.deps.stores.db.close();
    const r = await t.json("GET", "/v1/sandboxes");
    expect(r.status).toBe(500);
    expectErrorBody(r.res, r.body, "internal_error");
    expect(JSON.stringify(r.body)).not.toMatch(/CLIENT_CLOSED|libsql/i);
  });
});

describe("X-Request-Id", () => {
  test("is echoed when the client sends one, on success and on error", async () => {
    const ok = await t.call("GET", `/v1/sandboxes/${sb}`, { headers: { "x-request-id": "my-req-123" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-request-id")).toBe("my-req-123");
    const bad = await t.json("GET", "/v1/sandboxes/sandbox-nope0000000000", { headers: { "x-request-id": "my-req-456" } });
    expect(bad.status).toBe(404);
    expect(expectErrorBody(bad.res, bad.body).error.request_id).toBe("my-req-456");
  });

  test("is generated, and differs per request, when the client sends none", async () => {
    const a = await t.json("GET", "/v1/sandboxes/sandbox-nope0000000000");
    const b = await t.json("GET", "/v1/sandboxes/sandbox-nope0000000000");
    const ida = expectErrorBody(a.res, a.body).error.request_id;
    const idb = expectErrorBody(b.res, b.body).error.request_id;
    expect(ida).not.toBe(idb);
    expect((await t.call("GET", "/health")).headers.get("x-request-id")).toBeTruthy();
  });

  test("an overlong client id is replaced, not echoed", async () => {
    const long = "r".repeat(200);
    const r = await t.call("GET", `/v1/sandboxes/${sb}`, { headers: { "x-request-id": long } });
    const id = r.headers.get("x-request-id");
    expect(id).toBeTruthy();
    expect(id).not.toBe(long);
  });
});

describe("X-Request-Id", () => {
  test.each([
    ["trace.123:abc/x", true],
    ["a".repeat(128), true],
    ["a".repeat(129), false],
    ["has space", false],
  ])("%s is echoed: %s", async (id, echoed) => {
    const t = await createTestBay();
    try {
      const res = await t.call("GET", "/v1/sandboxes/sandbox-none", { headers: { "x-request-id": id } });
      const body = (await res.json()) as { error: { request_id: string } };
      expect(res.headers.get("x-request-id") === id).toBe(echoed);
      expect(body.error.request_id).toBe(res.headers.get("x-request-id")!);
    } finally {
      await t.close();
    }
  });
});
