/**
 * Requests for servers in a sandbox (`/v1/sandboxes/{id}/ports/{port}/{path}`)
 * as Bay's rules shape them, on the in-memory driver (its fake sandbox has an
 * echo server on every port from 1024 and nothing below): what of the caller's
 * request reaches the server, what of the server's answer reaches the caller,
 * and what is refused before any runtime starts. The real Ship and real servers
 * are in tests/e2e/ports.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { privateCaching } from "../../src/bay/domain/sandbox-ports.ts";
import { REFUSED_BY_SERVER_PORT } from "../../src/bay/drivers/memory/fake-ports.ts";
import { createMemoryBay, type MemoryBay, newSandbox } from "./support/memory-bay.ts";

let t: MemoryBay;
let id: string;
beforeAll(async () => {
  t = await createMemoryBay({ config: { limits: { max_upload_bytes: 64 * 1024 } } as never });
  id = await newSandbox(t);
});
afterAll(() => t.close());

const port = (rest: string, sandbox = id) => `/v1/sandboxes/${sandbox}/ports/${rest}`;
const KEY = "bay-key-must-never-reach-the-server";

describe("the caller's request, as the server gets it", () => {
  test("method, the rest of the path and the query pass as sent (encoding kept); the answer is the server's, marked", async () => {
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE"]) {
      const r = await t.json(method, port("8080/api/a%2Fb/$&/x?q=1&r=%20"));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ port: 8080, method, path: "/api/a%2Fb/$&/x?q=1&r=%20" });
      expect(r.res.headers.get("x-bay-upstream")).toBe("200");
    }
    // The root, with and without its slash.
    expect((await t.json("GET", port("8080/"))).body.path).toBe("/");
    expect((await t.json("GET", port("8080"))).body.path).toBe("/");
  });

  test("Bay's credentials, the caller's cookies and network context never reach the server; the rest does", async () => {
    const r = await t.json("POST", port("8080/echo"), {
      body: "hello",
      headers: {
        "x-owner": "alice",
        "content-type": "text/plain",
        "x-app-header": "kept",
        accept: "application/json",
        cookie: `session=${KEY}`,
        forwarded: "for=10.0.0.7",
        "x-forwarded-for": "10.0.0.7",
        "x-forwarded-host": "bay.internal",
        "x-real-ip": "10.0.0.7",
        "x-bay-nonce": "forged-nonce",
        "x-api-key": KEY,
        "x-access-token": KEY,
        "e2b-traffic-access-token": KEY,
        via: "1.1 front-proxy",
        "cf-connecting-ip": "10.0.0.7",
        "true-client-ip": "10.0.0.7",
        "x-client-ip": "10.0.0.7",
        "x-ship-upstream": "999",
        "proxy-authorization": `Basic ${KEY}`,
        connection: "x-drop-me",
        "x-drop-me": "named by Connection",
      },
    });
    expect(r.status).toBe(200);
    const seen = r.body.headers as Record<string, string>;
    expect(seen["x-app-header"]).toBe("kept");
    expect(seen["content-type"]).toBe("text/plain");
    expect(r.body.body_bytes).toBe(5);
    for (const gone of [
      "x-owner",
      "cookie",
      "forwarded",
      "x-forwarded-for",
      "x-forwarded-host",
      "x-real-ip",
      "proxy-authorization",
      "x-drop-me",
      "x-api-key",
      "x-access-token",
      "e2b-traffic-access-token",
      "via",
      "cf-connecting-ip",
      "true-client-ip",
      "x-client-ip",
    ]) {
      expect({ gone, value: seen[gone] }).toEqual({ gone, value: undefined as never });
    }
    // Bay's own nonce only (a forged one would have broken the call's proof), and no trace of the key anywhere.
    expect(seen["x-bay-nonce"]).not.toBe("forged-nonce");
    expect(JSON.stringify(seen)).not.toContain(KEY);
  });

  test("identity proxies' tokens and client headers in front of Bay never reach the server (review s88 M2, L1)", async () => {
    const sso: Record<string, string> = {
      "cf-access-jwt-assertion": "eyJ.cf.sig",
      "cf-access-client-secret": "cf-secret",
      "x-amzn-oidc-accesstoken": "alb-token",
      "x-amzn-oidc-data": "eyJ.alb.data",
      "x-goog-iap-jwt-assertion": "eyJ.iap.jwt",
      "x-goog-authenticated-user-email": "accounts.google.com:alice@example.com",
      "x-auth-request-access-token": "oauth2-proxy-token",
      "x-auth-request-email": "alice@example.com",
      "x-ms-token-aad-access-token": "easyauth-token",
      "x-ms-client-principal": "azure-principal",
      "x-pomerium-jwt-assertion": "eyJ.pomerium",
      "x-authentik-jwt": "eyJ.authentik",
      "x-vouch-idp-accesstoken": "vouch-token",
      "x-original-forwarded-for": "10.1.2.3",
      "x-envoy-external-address": "10.1.2.3",
      "x-cluster-client-ip": "10.1.2.3",
      "remote-user": "alice",
    };
    const r = await t.json("POST", port("8080/echo"), {
      body: "x",
      headers: { "x-owner": "alice", "content-type": "text/plain", "x-app-header": "kept", ...sso },
    });
    expect(r.status).toBe(200);
    const seen = r.body.headers as Record<string, string>;
    expect(seen["x-app-header"]).toBe("kept");
    expect(Object.keys(seen).filter((name) => name in sso)).toEqual([]);
  });

  test("an API key sent as Authorization reaches no server (api_key mode)", async () => {
    const k = await createMemoryBay({ config: { auth: { mode: "api_key" } } as never });
    try {
      const { key } = await k.bay.deps.apiKeys.create("alice", "test");
      const auth = { authorization: `Bearer ${key}` };
      const created = await k.json("POST", "/v1/sandboxes", { body: {}, headers: auth });
      const r = await k.json("GET", port("8080/", created.body.id), { headers: auth });
      expect(r.status).toBe(200);
      expect(JSON.stringify(r.body.headers)).not.toContain(key);
    } finally {
      await k.close();
    }
  });
});

describe("the server's answer, as the caller gets it", () => {
  test("any status is the server's, with its body (not Bay's error model), marked", async () => {
    for (const status of [201, 301, 401, 404, 500, 503]) {
      const r = await t.json("GET", port(`8080/x?status=${status}`));
      expect(r.status).toBe(status);
      expect(r.res.headers.get("x-bay-upstream")).toBe(String(status));
      expect(r.body.path).toBe(`/x?status=${status}`);
    }
  });

  test("a redirect stays under its port, written relative to the URL asked for; another origin's passes; a broken one is dropped (review s88 M1)", async () => {
    const moved = async (path: string, location: string) => {
      const q = `status=307&header=${encodeURIComponent(`location:${location}`)}&header=${encodeURIComponent(`content-location:${location}`)}`;
      const r = await t.call("DELETE", port(`${path}?${q}`));
      expect(r.status).toBe(307);
      const got = r.headers.get("location");
      expect(r.headers.get("content-location")).toBe(got);
      return got === null ? null : new URL(got, `http://localhost${port(path)}`).pathname;
    };
    const under = (p: string) => port(`8080${p}`);
    // Bay's own routes, by absolute path, by climbing, or by Bay's host spelled out: the server's own paths instead.
    expect(await moved("8080/items/1", `/v1/sandboxes/${"sandbox-other"}`)).toBe(under("/v1/sandboxes/sandbox-other"));
    expect(await moved("8080/a/b", "../../../../../../v1/sandboxes")).toBe(under("/v1/sandboxes"));
    expect(await moved("8080/a/b", "http://localhost/v1/workspaces")).toBe(under("/v1/workspaces"));
    expect(await moved("8080", "/login")).toBe(under("/login"));
    expect(await moved("8080/", "login")).toBe(under("/login"));
    expect(await moved("8080/a/b", "c")).toBe(under("/a/c"));
    // A first segment with a colon is a path, not a scheme.
    expect(await moved("8080/", "/javascript:alert(1)")).toBe(under("/javascript:alert(1)"));
    // Written as an absolute path under the port (no ../ chain a client could count differently).
    const q = (l: string) => `status=307&header=${encodeURIComponent(`location:${l}`)}`;
    const kept = await t.call("GET", port(`8080/a/b?${q("/login")}`));
    expect(kept.headers.get("location")).toBe(port("8080/login"));
    // A host a proxy in front says it was asked for, or one of Bay's configured names, is Bay's too.
    const forwarded = await t.bay.app.request(port(`8080/a?${q("https://bay.public.example:8443/v1/sandboxes")}`), {
      headers: { "x-owner": "alice", "x-forwarded-host": "bay.public.example" },
    });
    expect(forwarded.headers.get("location")).toBe(port("8080/v1/sandboxes"));
    const named = await t.call("GET", port(`8080/a?${q("http://127.0.0.1:9/v1/sandboxes")}`));
    expect(named.headers.get("location")).toBe(port("8080/v1/sandboxes"));
    // Bay's own credentialed routes on a host Bay does not know (its public name behind a proxy that says nothing): dropped.
    for (const written of [
      "https://bay.public.example/v1/sandboxes/sandbox-b",
      "https://bay.public.example/V1/%53andboxes",
      "https://bay.public.example//mcp",
      "https://bay.public.example/e2b/v2/sandboxes",
    ]) {
      const out = await t.call("GET", port(`8080/x?${q(written)}`));
      expect({ written, status: out.status, location: out.headers.get("location") }).toEqual({ written, status: 307, location: null });
    }
    const api = await t.call("GET", port(`8080/x?${q("https://api.example.com/v2/users?page=2")}`));
    expect(api.headers.get("location")).toBe("https://api.example.com/v2/users?page=2");
    // Another origin passes as WHATWG reads it, never as written: forms curl or requests would read as Bay's own host.
    for (const [written, passed] of [
      ["https://github.com/login?a=1", "https://github.com/login?a=1"],
      ["/\\evil.example/../../app/x", "http://evil.example/app/x"],
      ["https:/app/x", "https://app/x"],
      ["http://evil.example\\@localhost/app/x", "http://evil.example/@localhost/app/x"],
      // The same forms naming Bay's routes (review s90 M1): dropped besides, or (WHATWG's host "v1") harmless.
      ["/\\evil.example/../../v1/sandboxes/sandbox-b", null],
      ["https:/v1/sandboxes/sandbox-b", "https://v1/sandboxes/sandbox-b"],
    ]) {
      const out = await t.call("GET", port(`8080/x?${q(written!)}`));
      expect({ written, location: out.headers.get("location") }).toEqual({ written, location: passed ?? null });
    }
    const broken = await t.call("GET", port(`8080/x?status=302&header=${encodeURIComponent("location:http://[::1")}`));
    expect([broken.status, broken.headers.get("location")]).toEqual([302, null]);
  });

  test("a server's invalid status is a 502 naming the server's failure, not counted as the runtime's in /metrics", async () => {
    const badResponses = async () => {
      const text = await (await t.call("GET", "/metrics")).text();
      return Number(/bay_ship_errors_total\{reason="bad_response"\} (\d+)/.exec(text)?.[1]);
    };
    const before = await badResponses();
    const r = await t.json("GET", port("8080/?status=600"));
    expect([r.status, r.body.error.code, r.body.error.details.ship_code]).toEqual([502, "ship_error", "upstream_error"]);
    expect(r.res.headers.get("x-bay-upstream")).toBeNull();
    expect(await badResponses()).toBe(before);
    expect(Number.isInteger(before)).toBe(true);
  });

  test("cookies, CORS grants and headers passing for Bay's or Ship's are dropped; a page can never run as Bay's origin", async () => {
    const headers = [
      "set-cookie:sid=1; Path=/",
      "access-control-allow-origin:*",
      "access-control-allow-credentials:true",
      "x-bay-upstream:forged",
      "x-request-id:forged",
      "content-security-policy:default-src *",
      "x-ship-proof:forged",
      "x-app:kept",
      'clear-site-data:"cookies", "storage"',
      "strict-transport-security:max-age=31536000; includeSubDomains",
      'nel:{"report_to":"x","max_age":86400}',
      "report-to:{}",
      'reporting-endpoints:x="https://evil.example/"',
      "service-worker-allowed:/",
      'alt-svc:h3=":443"',
      "origin-agent-cluster:?0",
      "cache-control:public, max-age=60, s-maxage=300",
      "x-accel-redirect:/internal/secret",
      "x-accel-expires:3600",
      "x-sendfile:/etc/passwd",
      "surrogate-control:max-age=3600",
      "cdn-cache-control:public, max-age=3600",
      "cloudflare-cdn-cache-control:public",
      'www-authenticate:Basic realm="Bay login"',
      "refresh:0; url=https://evil.example/",
      "set-login:logged-in",
      "accept-ch:Sec-CH-UA-Model",
      "x-envoy-immediate-health-check-fail:true",
      "x-envoy-degraded:1",
    ];
    const q = headers.map((h) => `header=${encodeURIComponent(h)}`).join("&");
    const r = await t.call("GET", port(`8080/page?${q}`));
    expect(r.status).toBe(200);
    expect(r.headers.get("x-app")).toBe("kept");
    expect(r.headers.get("set-cookie")).toBeNull();
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
    expect(r.headers.get("access-control-allow-credentials")).toBeNull();
    expect(r.headers.get("x-bay-upstream")).toBe("200");
    expect(r.headers.get("x-request-id")).not.toBe("forged");
    expect(r.headers.get("x-ship-proof")).toBeNull();
    expect(r.headers.get("content-security-policy")).toStartWith("sandbox ");
    expect(r.headers.get("content-security-policy")).not.toContain("allow-same-origin");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    for (const gone of [
      "clear-site-data",
      "strict-transport-security",
      "nel",
      "report-to",
      "reporting-endpoints",
      "service-worker-allowed",
      "alt-svc",
      "origin-agent-cluster",
      "x-accel-redirect",
      "x-accel-expires",
      "x-sendfile",
      "surrogate-control",
      "cdn-cache-control",
      "cloudflare-cdn-cache-control",
      "www-authenticate",
      "refresh",
      "set-login",
      "accept-ch",
      "x-envoy-immediate-health-check-fail",
      "x-envoy-degraded",
    ]) {
      expect({ gone, value: r.headers.get(gone) }).toEqual({ gone, value: null as never });
    }
    // Never stored by a shared cache for others: private, the server's own max-age kept.
    expect(r.headers.get("cache-control")).toBe("private, max-age=60");
    expect((await t.call("GET", port("8080/plain"))).headers.get("cache-control")).toBe("private");
  });

  test("Cache-Control is made private: public, private and s-maxage dropped whatever their argument; commas in quotes kept; an open quote is no-store", () => {
    expect(privateCaching(null)).toBe("private");
    expect(privateCaching("public, max-age=60, S-MAXAGE = 300")).toBe("private, max-age=60");
    expect(privateCaching('private="set-cookie", max-age=600')).toBe("private, max-age=600");
    expect(privateCaching('no-cache="a,s-maxage=60", max-age=5')).toBe('private, no-cache="a,s-maxage=60", max-age=5');
    expect(privateCaching('x="a\\"b,c", max-age=1')).toBe('private, x="a\\"b,c", max-age=1');
    expect(privateCaching('no-cache="a, max-age=5')).toBe("private, no-store");
    expect(privateCaching("no-store")).toBe("private, no-store");
  });

  test("a request the runtime's HTTP server refuses by itself (no proof): 502, and the session is kept, not replaced", async () => {
    await t.json("GET", port("8080/warm"));
    const [before] = await t.engine.listContainers({ sandbox_id: id });
    const r = await t.json("GET", port(`${REFUSED_BY_SERVER_PORT}/too-big`));
    expect([r.status, r.body.error.code, r.body.error.details.ship_status]).toEqual([502, "ship_error", 431]);
    const after = await t.engine.listContainers({ sandbox_id: id });
    expect(after.map((c) => c.id)).toEqual([before!.id]);
    expect((await t.json("GET", port("8080/still-here"))).status).toBe(200);
  });
});

describe("refused before any runtime starts", () => {
  test("ports outside 1-65535, not a number, or the runtime's own: 400", async () => {
    const fresh = await newSandbox(t);
    for (const bad of ["0", "65536", "99999", "abc", "08080", "-1", "80.5", "1e3", "8080abc"]) {
      const r = await t.json("GET", port(`${bad}/`, fresh));
      expect({ bad, status: r.status, code: r.body.error?.code }).toEqual({ bad, status: 400, code: "validation_error" });
    }
    const own = await t.json("GET", port("8123/", fresh));
    expect([own.status, own.body.error.code]).toEqual([400, "validation_error"]);
    expect(own.body.error.message).toContain("runtime's own");
    expect(await t.engine.listContainers({ sandbox_id: fresh })).toHaveLength(0);
  });

  test("another owner's sandbox, or none: 404, as for any id, and nothing starts", async () => {
    const mine = await newSandbox(t);
    const theirs = await t.json("GET", port("8080/", mine), { owner: "bob" });
    const ghost = await t.json("GET", port("8080/", "sandbox-ghost000000000000"), { owner: "bob" });
    expect([theirs.status, theirs.body.error.code, ghost.status]).toEqual([404, "not_found", 404]);
    expect(theirs.res.headers.get("x-bay-upstream")).toBeNull();
    expect(await t.engine.listContainers({ sandbox_id: mine })).toHaveLength(0);
  });

  test("a body over limits.max_upload_bytes: 413, by its length or while it streams", async () => {
    const big = new Uint8Array(64 * 1024 + 1);
    const r = await t.json("POST", port("8080/upload"), { body: big });
    expect([r.status, r.body.error.code]).toEqual([413, "payload_too_large"]);
    // No length: a chunked body is counted as it goes.
    const chunked = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        ctrl.enqueue(new Uint8Array(16 * 1024));
      },
    });
    const res = await t.bay.app.request(port("8080/upload"), {
      method: "POST",
      headers: { "x-owner": "alice" },
      body: chunked,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
  });
});

test("nothing listening on the port: 409 conflict port_closed, not marked as the server's", async () => {
  const r = await t.json("GET", port("80/"));
  expect([r.status, r.body.error.code, r.body.error.details.reason, r.body.error.details.port]).toEqual([
    409,
    "conflict",
    "port_closed",
    80,
  ]);
  expect(r.res.headers.get("x-bay-upstream")).toBeNull();
  // A HEAD: Ship's error has no body on the wire, and its status still comes through (found by the fuzzer: it was 502).
  const head = await t.bay.app.request(port("80/"), { method: "HEAD", headers: { "x-owner": "alice" } });
  expect([head.status, head.headers.get("x-bay-upstream")]).toEqual([409, null]);
});

describe("the MCP tool http_request (as the caller, through the same route)", () => {
  let next = 1;
  const tool = async (name: string, args: Record<string, unknown>, owner = "alice") => {
    const res = await t.bay.app.request("/mcp", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json", "x-owner": owner },
      body: JSON.stringify({ jsonrpc: "2.0", id: next++, method: "tools/call", params: { name, arguments: args } }),
    });
    expect(res.status).toBe(200);
    const result = ((await res.json()) as { result: { content: Array<{ text: string }>; isError?: boolean } }).result;
    return { text: result.content.map((c) => c.text).join("\n"), isError: result.isError === true };
  };

  test("the server's answer whatever its status; the caller's identity cannot be replaced by the tool's headers", async () => {
    const ok = await tool("http_request", {
      sandbox_id: id,
      port: 8080,
      path: "/api?x=1",
      method: "POST",
      headers: {
        "x-app": "1",
        "X-Owner": "bob",
        authorization: "Bearer nope",
        "x-request-id": "forged",
        // Would route the in-process call elsewhere in Bay (review s89 L1); framing is Bay's.
        host: "8080-sandbox-other.sandboxes.example",
        "content-length": "1",
        "x-forwarded-for": "10.0.0.1",
      },
      body: "abc",
    });
    expect(ok.isError).toBe(false);
    const answer = JSON.parse(ok.text) as { status: number; headers: Record<string, string>; body: string };
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toStartWith("application/json");
    const echo = JSON.parse(answer.body) as { method: string; path: string; body_bytes: number; headers: Record<string, string> };
    // Acted as alice (bob has no such sandbox), with the tool's own header and body.
    expect(echo).toMatchObject({ method: "POST", path: "/api?x=1", body_bytes: 3 });
    expect(echo.headers["x-app"]).toBe("1");
    expect(echo.headers["x-request-id"]).not.toBe("forged");
    expect(echo.headers.host).not.toContain("sandboxes.example");
    expect(echo.headers["x-forwarded-for"]).toBeUndefined();

    const missing = JSON.parse((await tool("http_request", { sandbox_id: id, port: 8080, path: "/x?status=404" })).text);
    expect(missing.status).toBe(404);
  });

  test("Bay's errors are tool errors: nothing listening, another owner's sandbox, a path that leaves the server's", async () => {
    const closed = await tool("http_request", { sandbox_id: id, port: 80 });
    expect([closed.isError, closed.text]).toEqual([true, "conflict: nothing in the sandbox accepts connections on port 80"]);
    const bobs = await tool("http_request", { sandbox_id: id, port: 8080 }, "bob");
    expect(bobs.isError).toBe(true);
    expect(bobs.text).toStartWith("not_found:");
    for (const path of ["/../../shell/exec", "/a/../../..", "/%2e%2e/%2e%2e/stop"]) {
      const r = await tool("http_request", { sandbox_id: id, port: 8080, path, method: "POST", body: "{}" });
      expect({ path, isError: r.isError, text: r.text.slice(0, 17) }).toEqual({ path, isError: true, text: "validation_error:" });
    }
    for (const path of ["relative", "/a b", "/x#frag"]) {
      const r = await tool("http_request", { sandbox_id: id, port: 8080, path });
      expect(r.isError).toBe(true);
      expect(r.text).toContain("Invalid arguments");
    }
  });

  test("run_shell with background starts a server-like process and names it", async () => {
    const r = await tool("run_shell", { sandbox_id: id, command: "sleep 0", background: true });
    expect(r.isError).toBe(false);
    expect(r.text).toMatch(/^started in the background: process \S+/);
  });
});
