/**
 * The E2B-compatible API in-process (real app, real libSQL; nothing here starts a
 * container): the same owners, quotas and rate limit as Bay's own API, E2B's
 * error shape on its routes only, and data-plane tokens bound to their sandbox.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

const open: TestBay[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});
async function bay(config: Record<string, unknown> = {}): Promise<TestBay> {
  const t = await createTestBay({ config: config as any });
  open.push(t);
  return t;
}

/** A request to the app as it arrives (E2B bodies are not Bay's error model, so the harness's check is skipped). */
async function e2b(t: TestBay, method: string, path: string, o: { owner?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { "x-owner": o.owner ?? "alice", ...(o.headers ?? {}) };
  if (o.body !== undefined) headers["content-type"] = "application/json";
  const res = await t.bay.app.request(`/e2b${path}`, {
    method,
    headers,
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, res };
}

describe("E2B control plane on Bay's domain", () => {
  test("one owner namespace with /v1; another owner's sandbox is 404 in E2B's shape", async () => {
    const t = await bay();
    const c = await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base", metadata: { a: "1" } } });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ templateID: "base", envdVersion: expect.any(String), domain: null });
    expect(c.body.envdAccessToken).toStartWith(`ea_${c.body.sandboxID}_`);
    expect(c.body.trafficAccessToken).toStartWith(`ta_${c.body.sandboxID}_`);
    const own = await t.json("GET", `/v1/sandboxes/${c.body.sandboxID}`);
    expect(own.status).toBe(200);
    expect(own.body.profile).toBe("python-default");
    const foreign = await e2b(t, "GET", `/sandboxes/${c.body.sandboxID}`, { owner: "mallory" });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ code: 404, message: `sandbox not found: ${c.body.sandboxID}` });
    expect((await e2b(t, "DELETE", `/sandboxes/${c.body.sandboxID}`, { owner: "mallory" })).status).toBe(404);
    expect((await e2b(t, "GET", "/v2/sandboxes", { owner: "mallory" })).body).toEqual([]);
    // Bay's own routes keep Bay's body.
    expect((await t.json("GET", "/v1/sandboxes/sandbox-nope")).body.error.code).toBe("not_found");
  });

  test("validation, unknown templates, pause and the per-owner quota answer E2B's shape", async () => {
    const t = await bay({ limits: { max_sandboxes_per_owner: 1 } });
    const bad = await e2b(t, "POST", "/v2/sandboxes", { body: { timeout: 5 } });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe(400);
    expect((await e2b(t, "POST", "/sandboxes", { body: { templateID: "no-such" } })).body).toMatchObject({ code: 404 });
    expect((await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base", autoPause: true } })).status).toBe(501);
    const first = await e2b(t, "POST", "/sandboxes", { body: { templateID: "code-interpreter-v1" } });
    expect(first.status).toBe(201);
    const second = await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } });
    expect(second.status).toBe(429);
    expect(second.body.code).toBe(429);
    expect(second.res.headers.get("retry-after")).toBeTruthy();
    const pause = await e2b(t, "POST", `/sandboxes/${first.body.sandboxID}/pause`);
    expect(pause.status).toBe(501);
    expect(pause.body.message).toContain("cannot pause");
    // Sandbox.updateNetwork: refused with its reason (the SDK read a 404 as "sandbox not found"); another owner's is 404.
    const network = await e2b(t, "PUT", `/sandboxes/${first.body.sandboxID}/network`, { body: { allowOut: ["example.com"] } });
    expect(network.status).toBe(501);
    expect(network.body.message).toContain("profile");
    expect((await e2b(t, "PUT", `/sandboxes/${first.body.sandboxID}/network`, { owner: "mallory", body: {} })).status).toBe(404);
    const unknownRoute = await e2b(t, "GET", "/volumes");
    expect(unknownRoute.body).toMatchObject({ code: 404 });
  });

  test("templates: by id, by alias, and nothing else under /templates", async () => {
    const t = await bay();
    const byId = await e2b(t, "GET", "/templates/code-interpreter-v1");
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({ templateID: "code-interpreter-v1", buildStatus: "ready" });
    const alias = await e2b(t, "GET", "/templates/aliases/base");
    expect(alias.status).toBe(200);
    expect(alias.body).toEqual({ templateID: "base", public: true });
    expect((await e2b(t, "GET", "/templates/aliases/no-such")).body).toMatchObject({ code: 404 });
    // Routed as /templates/:templateID/:alias: any other first segment is no route at all.
    for (const path of ["/templates/base/base", "/templates/aliasesx/base", "/templates/aliases/base/more"]) {
      const r = await e2b(t, "GET", path);
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: 404 });
    }
    expect((await e2b(t, "GET", `/templates/aliases/${"a".repeat(300)}`)).status).toBe(400);
    expect((await e2b(t, "GET", "/templates/aliases/base", { owner: "bad owner!" })).status).toBe(400);
  });

  test("a Bay whose profiles lack e2b.default_profile: its sandboxes and other templates work; base is a 404 naming the setting", async () => {
    const t = await bay({ profiles: [{ id: "custom", image: "bay-ship:latest" }] });
    // Before: every sandbox's detail and listing answered 400 "unknown profile: python-default".
    const made = await t.json("POST", "/v1/sandboxes", { body: { profile: "custom" } });
    expect(made.status).toBe(201);
    const detail = await e2b(t, "GET", `/sandboxes/${made.body.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toMatchObject({ sandboxID: made.body.id, templateID: "custom" });
    expect((await e2b(t, "GET", "/v2/sandboxes")).status).toBe(200);
    const custom = await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "custom" } });
    expect(custom.status).toBe(201);
    const base = await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } });
    expect(base.status).toBe(404);
    expect(base.body.message).toContain('e2b.default_profile "python-default"');
    expect((await e2b(t, "GET", "/templates/aliases/base")).status).toBe(404);
    expect((await e2b(t, "GET", "/templates/custom")).status).toBe(200);
  });

  test("timeout is an absolute deadline; expired sandboxes are gone for E2B and deleted", async () => {
    const t = await bay();
    const c = await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base", timeout: 3600 } });
    const id = c.body.sandboxID;
    expect((await e2b(t, "POST", `/sandboxes/${id}/timeout`, { body: { timeout: 60 } })).status).toBe(204);
    const info = await e2b(t, "GET", `/sandboxes/${id}`);
    expect(Date.parse(info.body.endAt) - Date.now()).toBeLessThan(61_000);
    await t.bay.deps.stores.sandboxes.setExpiresAt(id, Date.now() - 1);
    expect((await e2b(t, "GET", `/sandboxes/${id}`)).status).toBe(404);
    expect((await t.json("GET", `/v1/sandboxes/${id}`)).status).toBe(404);
  });
});

describe("listing", () => {
  test("order asc pages oldest first with the same token, startedAfter keeps those started since, and a bad date is 400", async () => {
    const t = await bay();
    const ids: string[] = [];
    const starts: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = (await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } })).body;
      ids.push(c.sandboxID);
      starts.push((await e2b(t, "GET", `/sandboxes/${c.sandboxID}`)).body.startedAt);
      await Bun.sleep(5);
    }
    const page = async (query: string) => {
      const r = await e2b(t, "GET", `/v2/sandboxes?${query}`);
      expect(r.status).toBe(200);
      return { ids: (r.body as Array<{ sandboxID: string }>).map((s) => s.sandboxID), next: r.res.headers.get("x-next-token") };
    };
    const all = async (query: string) => {
      const out: string[] = [];
      let token: string | null = null;
      do {
        const p = await page(`${query}${token ? `&nextToken=${token}` : ""}`);
        out.push(...p.ids);
        token = p.next;
      } while (token);
      return out;
    };
    expect(await all("limit=3")).toEqual([...ids].reverse());
    expect(await all("limit=3&order=desc")).toEqual([...ids].reverse());
    expect(await all("limit=3&order=asc")).toEqual(ids);
    expect(await all(`limit=1&order=asc&startedAfter=${encodeURIComponent(starts[2]!)}`)).toEqual(ids.slice(2));
    expect(await all(`startedAfter=${encodeURIComponent(starts[1]!)}`)).toEqual(ids.slice(1).reverse());
    expect((await page(`startedAfter=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).ids).toEqual([]);
    for (const bad of ["yesterday", "2026-13-45T00:00:00Z"]) {
      const r = await e2b(t, "GET", `/v2/sandboxes?startedAfter=${bad}`);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 400, message: expect.stringContaining("startedAfter") });
    }
    expect((await e2b(t, "GET", "/v2/sandboxes?order=sideways")).status).toBe(400);
  });
});

describe("refusals of the app's own middleware on E2B paths", () => {
  test("are in E2B's {code, message} (the SDKs parse only that); Bay's paths and a sandbox host's keep Bay's body", async () => {
    const t = await bay({ limits: { max_body_bytes: 1024 } });
    // The body limit on a create.
    const big = await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base", metadata: { pad: "x".repeat(4096) } } });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ code: 413, message: expect.stringContaining("1024") });
    // The host guard of anonymous mode (a DNS-rebinding name).
    const rebound = await t.bay.app.request("http://evil.example/e2b/v2/sandboxes", {
      headers: { host: "evil.example", "x-owner": "alice" },
    });
    expect(rebound.status).toBe(403);
    expect(await rebound.json()).toEqual({ code: 403, message: expect.stringContaining("allowed_hosts") });
    const bays = await t.bay.app.request("http://evil.example/v1/sandboxes", { headers: { host: "evil.example", "x-owner": "alice" } });
    expect(bays.status).toBe(403);
    expect(((await bays.json()) as any).error.code).toBe("forbidden");
    // The prefix's neighbours are Bay's.
    const near = await t.bay.app.request("http://evil.example/e2bx", { headers: { host: "evil.example" } });
    expect(((await near.json()) as any).error.code).toBe("forbidden");
  });
});

describe("E2B data plane credentials", () => {
  test("a token opens its own sandbox only; the data plane is charged to the owner's rate limit", async () => {
    const t = await bay({ limits: { rate_limit_per_minute: 6 } });
    const a = (await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } })).body;
    const b = (await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } })).body;
    const health = (id: string, token?: string) =>
      t.bay.app.request("/e2b/health", { headers: { "e2b-sandbox-id": id, ...(token ? { "x-access-token": token } : {}) } });
    expect((await health(a.sandboxID, a.envdAccessToken)).status).toBe(204);
    expect((await health(b.sandboxID, a.envdAccessToken)).status).toBe(401);
    expect((await health(a.sandboxID)).status).toBe(401);
    expect((await health(a.sandboxID, a.trafficAccessToken)).status).toBe(401);
    let limited: Response | undefined;
    for (let i = 0; i < 10 && !limited; i++) {
      const r = await health(a.sandboxID, a.envdAccessToken);
      if (r.status === 429) limited = r;
    }
    expect(limited).toBeDefined();
    expect(await limited!.json()).toMatchObject({ code: 429 });
  });

  test("/health named by the access token alone (Python SDKs before 2.25.1 after connect): 204 while alive, 502 once killed, 401 for a wrong token", async () => {
    const t = await bay();
    const a = (await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } })).body;
    const b = (await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } })).body;
    const health = (token: string) => t.bay.app.request("/e2b/health", { headers: { "x-access-token": token } });
    expect((await health(a.envdAccessToken)).status).toBe(204);
    // Another sandbox's id inside a token signed for neither, a truncated token, an empty one: refused.
    for (const wrong of [a.envdAccessToken.replace(a.sandboxID, b.sandboxID), a.envdAccessToken.slice(0, -1), ""]) {
      expect((await health(wrong)).status).toBe(401);
    }
    expect((await e2b(t, "DELETE", `/sandboxes/${a.sandboxID}`)).status).toBe(204);
    const gone = await health(a.envdAccessToken);
    expect(gone.status).toBe(502);
    expect((await t.bay.app.request("/e2b/health")).status).toBe(200);
  });

  test("slashes doubled after the prefix (a trailing slash in E2B_SANDBOX_URL, joined by the Python SDKs) route as one; nothing else is rewritten", async () => {
    const t = await bay();
    const a = (await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } })).body;
    const req = (path: string, init: RequestInit = {}) => t.bay.app.request(path, init);
    for (const path of ["/e2b//health", "/e2b///health"]) {
      expect((await req(path, { headers: { "x-access-token": a.envdAccessToken } })).status).toBe(204);
    }
    // A Connect method is found (its token is checked: 401), not the catch-all's 404.
    const rpc = await req("/e2b//filesystem.Filesystem/ListDir", {
      method: "POST",
      headers: { "content-type": "application/json", "e2b-sandbox-id": a.sandboxID, "x-access-token": "ea_wrong" },
      body: JSON.stringify({ path: "/home/user" }),
    });
    expect(rpc.status).toBe(401);
    expect((await rpc.json()).code).toBe("unauthenticated");
    expect((await req("/e2b//nowhere")).status).toBe(404);
    // Bay's own API and the prefix's neighbours keep their paths.
    expect((await req("/v1//sandboxes", { headers: { "x-owner": "alice" } })).status).toBe(404);
    expect((await req("/e2bx//health")).status).toBe(404);
  });

  test("/files without a signature holds the username query (the Python SDK's way to name a user) to the data plane's rule", async () => {
    const t = await bay();
    const a = (await e2b(t, "POST", "/v2/sandboxes", { body: { templateID: "base" } })).body;
    const files = (username: string, method = "GET", token = a.envdAccessToken) =>
      e2b(t, method, `/files?path=/home/user/x&username=${encodeURIComponent(username)}`, {
        headers: { "e2b-sandbox-id": a.sandboxID, "x-access-token": token },
      });
    // Refused before anything is read or written (nothing starts): root is not run unprivileged, strangers are unknown.
    for (const method of ["GET", "POST"]) {
      expect(await files("root", method)).toMatchObject({ status: 403, body: { code: 403 } });
      expect(await files("alice", method)).toMatchObject({ status: 400, body: { code: 400 } });
    }
    // The token still comes first.
    expect((await files("root", "GET", "ea_wrong")).status).toBe(401);
    expect(await t.bay.driver.listContainers({ sandbox_id: a.sandboxID })).toEqual([]);
  });
});
