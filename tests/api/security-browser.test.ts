/**
 * A web page in the user's browser attacking a local Bay in anonymous mode, where
 * reaching Bay is enough to act as an owner:
 *
 * * DNS rebinding: the page's own host name resolves to 127.0.0.1, so its
 *   requests carry `Host: evil.example` — refused by the Host guard;
 * * plain cross-site requests to `http://127.0.0.1:8000`: the Host is an allowed
 *   one, but the browser says where the request comes from (`Origin` on a POST,
 *   `Sec-Fetch-Site` on every request). "Simple" requests (no custom header, no
 *   JSON content type, `mode: "no-cors"`) are sent without a CORS preflight, so
 *   only Bay can refuse them: an empty-bodied POST would create a sandbox or a
 *   workspace for the default owner, blind but real.
 *
 * And CORS: off unless configured; when configured, only the listed origins.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

const HOST = "127.0.0.1:8000";
let t: TestBay;
beforeAll(async () => {
  t = await createTestBay({ config: { server: { cors_origins: ["https://app.example"] } } });
});
afterAll(async () => {
  await t?.close();
});

/** A request with no X-Owner (a browser's simple request cannot set one): the default owner's. */
function browser(method: string, path: string, headers: Record<string, string>, body?: string) {
  return t.bay.app.request(`http://${HOST}${path}`, {
    method,
    headers: { host: HOST, ...headers },
    ...(body !== undefined ? { body } : {}),
  });
}

const defaultOwnersSandboxes = async () =>
  (await t.json("GET", "/v1/sandboxes", { headers: { host: HOST, "x-owner": "default" } })).body.items.length as number;

describe("anonymous mode, a browser page on another site", () => {
  test("DNS rebinding: a Host that is not an allowed name is refused before anything runs", async () => {
    const res = await browser("POST", "/v1/sandboxes", { host: "evil.example:8000" });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string; details: { reason: string } } }).error).toMatchObject({
      code: "forbidden",
      details: { reason: "host_not_allowed" },
    });
  });

  test("a cross-site POST (Origin of another site) creates nothing", async () => {
    const before = await defaultOwnersSandboxes();
    for (const origin of ["https://evil.example", "null", "http://127.0.0.1:9999"]) {
      const res = await browser("POST", "/v1/sandboxes", { origin, "sec-fetch-site": "cross-site", "content-type": "text/plain" });
      expect([origin, res.status]).toEqual([origin, 403]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("forbidden");
      const ws = await browser("POST", "/v1/workspaces", { origin });
      expect([origin, ws.status]).toEqual([origin, 403]);
    }
    expect(await defaultOwnersSandboxes()).toBe(before);
  });

  test("a cross-site request without Origin (a no-cors GET) is refused by its Sec-Fetch-Site", async () => {
    for (const site of ["cross-site", "same-site"]) {
      const res = await browser("GET", "/v1/sandboxes", { "sec-fetch-site": site });
      expect([site, res.status]).toEqual([site, 403]);
    }
  });

  test("Bay's own pages (same origin), a configured origin and non-browser clients are served", async () => {
    const same = await browser("POST", "/v1/sandboxes", { origin: `http://${HOST}`, "sec-fetch-site": "same-origin" });
    expect(same.status).toBe(201);
    const typed = await browser("GET", "/v1/sandboxes", { "sec-fetch-site": "none" });
    expect(typed.status).toBe(200);
    const configured = await browser("GET", "/v1/sandboxes", { origin: "https://app.example", "sec-fetch-site": "cross-site" });
    expect(configured.status).toBe(200);
    expect(configured.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const cli = await browser("GET", "/v1/sandboxes", {});
    expect(cli.status).toBe(200);
  });
});

describe("CORS", () => {
  test("a preflight from an origin not configured gets no CORS allowance", async () => {
    const res = await browser("OPTIONS", "/v1/sandboxes", {
      origin: "https://evil.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("off unless configured: a Bay without cors_origins allows no origin", async () => {
    const plain = await createTestBay({ config: { auth: { mode: "api_key" } } });
    try {
      const res = await plain.bay.app.request(`http://${HOST}/v1/sandboxes`, {
        method: "OPTIONS",
        headers: { host: HOST, origin: "https://app.example", "access-control-request-method": "GET" },
      });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      const get = await plain.bay.app.request(`http://${HOST}/health`, { headers: { host: HOST, origin: "https://app.example" } });
      expect(get.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await plain.close();
    }
  });
});
