/**
 * The E2B control plane's Authorization header in anonymous mode: Bearer
 * credentials that cannot be read are refused (401 in E2B's body), as on Bay's
 * own API, instead of the request being served as X-Owner's. Found by `bun run
 * fuzz`: two Authorization headers (joined by the server into one value) killed
 * a sandbox as X-Owner.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

const open: TestBay[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

async function e2b(t: TestBay, method: string, path: string, headers: HeadersInit) {
  const res = await t.bay.app.request(`/e2b${path}`, { method, headers });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe("E2B control plane, anonymous mode", () => {
  test("unreadable Bearer credentials are 401; none, or Basic, still mean X-Owner", async () => {
    const t = await createTestBay();
    open.push(t);
    const twice = new Headers([
      ["x-owner", "alice"],
      ["authorization", "Bearer aaaaaaaaaaaaaaaaaaaa"],
      ["authorization", "Bearer bbbbbbbbbbbbbbbbbbbbbbb"],
    ]);
    for (const headers of [twice, { "x-owner": "alice", authorization: "Bearer a b" }, { "x-owner": "alice", authorization: "Bearer" }]) {
      const r = await e2b(t, "GET", "/v2/sandboxes", headers);
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ code: 401, message: "malformed Authorization header: expected Bearer <token>" });
    }
    expect((await e2b(t, "GET", "/v2/sandboxes", { "x-owner": "alice" })).status).toBe(200);
    expect((await e2b(t, "GET", "/v2/sandboxes", { "x-owner": "alice", authorization: "Basic dXNlcjo=" })).status).toBe(200);
  });
});
