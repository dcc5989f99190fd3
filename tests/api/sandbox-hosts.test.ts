/**
 * Sandbox hosts (`{port}-{id}.{e2b.sandbox_domain}`, what E2B's getHost names) on
 * the in-memory driver, whose fake sandbox has an echo server on every port from
 * 1024: who may reach them (the traffic token, or public traffic), what of the
 * request and answer passes on an origin of the sandbox's own, and that Bay's API
 * is never served under the domain. The real SDK, Ship and servers are in
 * tests/e2e/sandbox-hosts.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { hostOnlyCookie } from "../../src/bay/domain/sandbox-ports.ts";
import { sandboxHost } from "../../src/bay/e2b/sandbox-hosts.ts";
import { createMemoryBay, type MemoryBay } from "./support/memory-bay.ts";

const DOMAIN = "sandbox.test:8000";
let t: MemoryBay;
let priv: { id: string; token: string };
let pub: { id: string; token: string };

async function e2bCreate(body: Record<string, unknown>, owner = "alice") {
  const res = await t.bay.app.request("/e2b/v2/sandboxes", {
    method: "POST",
    headers: { "x-owner": owner, "content-type": "application/json" },
    body: JSON.stringify({ templateID: "base", ...body }),
  });
  expect(res.status).toBe(201);
  const j = (await res.json()) as { sandboxID: string; trafficAccessToken: string; domain: string | null };
  expect(j.domain).toBe(DOMAIN);
  return { id: j.sandboxID, token: j.trafficAccessToken };
}

/** A request as a browser or the SDK's user sends it to a sandbox host. */
async function host(name: string, path = "/", init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await t.bay.app.request(`http://${name}${path}`, { ...init, headers: { host: name, ...(init.headers ?? {}) } });
  const text = await res.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, res };
}
const at = (sb: { id: string }, port = 8080) => `${port}-${sb.id}.${DOMAIN}`;

/** Starts the sandbox's runtime (a host request never does). */
async function start(sb: { id: string }, owner = "alice") {
  expect((await t.json("POST", `/v1/sandboxes/${sb.id}/shell/exec`, { body: { command: "true" }, owner })).status).toBe(200);
}

beforeAll(async () => {
  t = await createMemoryBay({ config: { e2b: { sandbox_domain: DOMAIN } } as never });
  priv = await e2bCreate({});
  pub = await e2bCreate({ network: { allowPublicTraffic: true, maskRequestHost: "localhost:${PORT}" } });
  await start(priv);
  await start(pub);
});
afterAll(() => t.close());

describe("who may reach a sandbox host", () => {
  test("a private sandbox (Bay's default): its traffic token opens it; none is 403 naming the header; a wrong one 401", async () => {
    const ok = await host(at(priv), "/api?q=1", { headers: { "e2b-traffic-access-token": priv.token } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ port: 8080, method: "GET", path: "/api?q=1" });
    expect(ok.res.headers.get("x-bay-upstream")).toBe("200");
    const none = await host(at(priv));
    expect(none.status).toBe(403);
    expect(none.body.error).toMatchObject({ code: "forbidden", details: { reason: "traffic_token_required" } });
    expect(none.body.error.message).toContain("e2b-traffic-access-token");
    // Another sandbox's token, a truncated one, garbage: 401, and never the server.
    for (const wrong of [pub.token, priv.token.slice(0, -1), "x".repeat(300), ""]) {
      const r = await host(at(priv), "/", { headers: { "e2b-traffic-access-token": wrong } });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe("unauthorized");
    }
  });

  test("a refusal on a sandbox host is in Bay's body, whatever its path (one under E2B's prefix too)", async () => {
    const none = await host(at(priv), "/e2b/v2/sandboxes");
    expect(none.status).toBe(403);
    expect(none.body.error).toMatchObject({ code: "forbidden", details: { reason: "traffic_token_required" } });
  });

  test("a sandbox created with allowPublicTraffic answers anyone; a token, if sent, must still be its own", async () => {
    expect((await host(at(pub), "/x")).body).toMatchObject({ port: 8080, path: "/x" });
    expect((await host(at(pub), "/", { headers: { "e2b-traffic-access-token": priv.token } })).status).toBe(401);
  });

  test("Bay's own sandboxes (/v1) are private; unknown, deleted and expired sandboxes are 404", async () => {
    const v1 = await t.json("POST", "/v1/sandboxes", { body: {} });
    await start({ id: v1.body.id });
    expect((await host(at({ id: v1.body.id }))).status).toBe(403);
    expect((await host(at({ id: "sandbox-00000000000000000000000000" }))).status).toBe(404);
    const gone = await e2bCreate({ network: { allowPublicTraffic: true } });
    expect((await t.bay.app.request(`/e2b/sandboxes/${gone.id}`, { method: "DELETE", headers: { "x-owner": "alice" } })).status).toBe(204);
    expect((await host(at(gone))).status).toBe(404);
    expect((await host(at(gone), "/", { headers: { "e2b-traffic-access-token": gone.token } })).status).toBe(404);
  });

  test("the runtime's own port and closed ports are refused as on /ports; other methods are 405", async () => {
    const own = await host(`${t.bay.deps.profiles.require("python-default").runtime_port}-${pub.id}.${DOMAIN}`);
    expect(own.status).toBe(400);
    const closed = await host(at(pub, 80));
    expect(closed.status).toBe(409);
    expect(closed.body.error.details.reason).toBe("port_closed");
    for (const method of ["OPTIONS", "TRACE", "PROPFIND"]) expect((await host(at(pub), "/", { method })).status).toBe(405);
  });
});

describe("what a host request never does", () => {
  test("a stopped sandbox (or one never started) is not started: 409 port_closed, and it stays stopped", async () => {
    const cold = await e2bCreate({ network: { allowPublicTraffic: true } });
    for (const headers of [{}, { "e2b-traffic-access-token": cold.token }] as Record<string, string>[]) {
      const r = await host(at(cold), "/", { headers });
      expect(r.status).toBe(409);
      expect(r.body.error.details).toMatchObject({ reason: "port_closed", port: 8080 });
      expect(r.body.error.message).toContain("stopped");
    }
    expect((await t.bay.deps.stores.sandboxes.get(cold.id))?.currentSessionId).toBeNull();
    expect(await t.engine.listContainers({ sandbox_id: cold.id })).toHaveLength(0);
  });

  test("a runtime that died is not restarted by a host request (the retry on a fresh runtime included); an owner's call restarts it", async () => {
    const sb = await e2bCreate({ network: { allowPublicTraffic: true } });
    await start(sb);
    const [old] = await t.engine.listContainers({ sandbox_id: sb.id });
    t.engine.crash(old!.id);
    for (const headers of [{}, { "e2b-traffic-access-token": sb.token }] as Record<string, string>[]) {
      const r = await host(at(sb), "/", { headers });
      expect(r.status).toBe(409);
      expect(r.body.error.details.reason).toBe("port_closed");
    }
    expect((await t.engine.listContainers({ sandbox_id: sb.id })).filter((c) => c.state === "running")).toHaveLength(0);
    await start(sb);
    expect((await t.engine.listContainers({ sandbox_id: sb.id })).filter((c) => c.state === "running")).toHaveLength(1);
    expect((await host(at(sb))).status).toBe(200);
  });

  test("E2B egress rules Bay cannot apply are refused at create, never ignored", async () => {
    for (const body of [
      { allow_internet_access: false },
      { network: { denyOut: ["0.0.0.0/0"] } },
      { network: { allowOut: ["example.com"], allowPublicTraffic: true } },
      { network: { egressProxy: { address: "proxy:1080" } } },
      { network: { rules: {} } },
    ]) {
      const res = await t.bay.app.request("/e2b/v2/sandboxes", {
        method: "POST",
        headers: { "x-owner": "carol", "content-type": "application/json" },
        body: JSON.stringify({ templateID: "base", ...body }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { message: string }).message).toContain("egress");
    }
    expect((await t.json("GET", "/v1/sandboxes", { owner: "carol" })).body.items).toEqual([]);
  });
});

describe("an origin of the sandbox's own", () => {
  test("cookies pass both ways, but never one for the shared domain; Bay's credentials and network context never reach the server", async () => {
    const q = [
      "Set-Cookie:sid=1; Path=/; HttpOnly",
      "Set-Cookie:wide=1; Domain=sandbox.test; Path=/",
      "Set-Cookie:wide2=1; path=/; DOMAIN=.sandbox.test",
      "Content-Security-Policy:default-src 'self'",
      'Clear-Site-Data:"cookies", "storage"',
      "Access-Control-Allow-Origin:*",
      "X-Accel-Redirect:/internal",
      "X-Bay-Upstream:999",
    ]
      .map((h) => `header=${encodeURIComponent(h)}`)
      .join("&");
    const r = await host(at(pub), `/?${q}`, {
      headers: {
        cookie: "sid=1",
        authorization: "Bearer bay-key",
        "x-api-key": "bay-key",
        "x-access-token": "envd-token",
        "x-owner": "mallory",
        "x-forwarded-for": "10.0.0.7",
        "e2b-traffic-access-token": pub.token,
      },
    });
    expect(r.status).toBe(200);
    const seen = r.body.headers as Record<string, string>;
    expect(seen.cookie).toBe("sid=1");
    for (const gone of ["authorization", "x-api-key", "x-access-token", "x-owner", "x-forwarded-for", "e2b-traffic-access-token"]) {
      expect(seen[gone]).toBeUndefined();
    }
    expect(r.res.headers.getSetCookie()).toEqual(["sid=1; Path=/; HttpOnly"]);
    // The app's own page rules, not Bay's opaque-origin sandbox.
    expect(r.res.headers.get("content-security-policy")).toBe("default-src 'self'");
    expect(r.res.headers.get("access-control-allow-origin")).toBe("*");
    expect(r.res.headers.get("x-accel-redirect")).toBeNull();
    // "cookies" would clear every neighbouring sandbox's (the whole registrable domain).
    expect(r.res.headers.get("clear-site-data")).toBeNull();
    expect(r.res.headers.get("x-bay-upstream")).toBe("200");
    expect(r.res.headers.get("cache-control")).toStartWith("private");
  });

  test("the same server through Bay's /ports route keeps Bay's origin rules (no cookies, an opaque origin)", async () => {
    const r = await t.json("GET", `/v1/sandboxes/${pub.id}/ports/8080/?header=Set-Cookie:sid%3D1`, { headers: { cookie: "sid=1" } });
    expect(r.status).toBe(200);
    expect(r.body.headers.cookie).toBeUndefined();
    expect(r.res.headers.getSetCookie()).toEqual([]);
    expect(r.res.headers.get("content-security-policy")).toStartWith("sandbox");
  });

  test("Bay's API is never served under the domain, whatever the path or the credential", async () => {
    for (const name of [
      `api.${DOMAIN}`,
      `8080-${pub.id}.x.${DOMAIN}`,
      `0-${pub.id}.${DOMAIN}`,
      `99999-${pub.id}.${DOMAIN}`,
      `8080-nope.${DOMAIN}`,
    ]) {
      const r = await host(name, "/v1/sandboxes", { headers: { "x-owner": "alice" } });
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe("not_found");
    }
    // The path under a sandbox host is the server's, never Bay's route.
    const r = await host(at(pub), "/v1/sandboxes", { headers: { "x-owner": "alice" } });
    expect(r.body).toMatchObject({ port: 8080, path: "/v1/sandboxes" });
    // Names outside the domain are Bay's API as before.
    expect((await t.json("GET", "/v1/sandboxes")).status).toBe(200);
  });

  test("the request reaches the owner's sandbox as its owner: another owner's token-less call to a private one is refused", async () => {
    const other = await e2bCreate({}, "bob");
    await start(other, "bob");
    expect((await host(at(other))).status).toBe(403);
    const r = await host(at(other), "/", { headers: { "e2b-traffic-access-token": other.token, "x-owner": "alice" } });
    expect(r.status).toBe(200);
  });
});

describe("rules", () => {
  test("sandboxHost: only {port}-{id} directly under the domain, case-insensitive, ports 1-65535", () => {
    expect(sandboxHost("3000-sandbox-abc.localhost:8000", "localhost:8000")).toEqual({ port: 3000, sandboxId: "sandbox-abc" });
    expect(sandboxHost("3000-SANDBOX-ABC.LocalHost:8000", "localhost:8000")).toEqual({ port: 3000, sandboxId: "sandbox-abc" });
    expect(sandboxHost("localhost:8000", "localhost:8000")).toBeNull();
    expect(sandboxHost("3000-sandbox-abc.evil-localhost:8000", "localhost:8000")).toBeNull();
    expect(sandboxHost(undefined, "localhost:8000")).toBeNull();
    // The name decides, whatever the port (or none) and one trailing dot: Bay's API is never served under it.
    for (const spelling of [
      "3000-sandbox-abc.localhost:9000",
      "3000-sandbox-abc.localhost",
      "3000-sandbox-abc.localhost.:8000",
      " 3000-sandbox-abc.localhost:08000 ",
    ]) {
      expect(sandboxHost(spelling, "localhost:8000")).toEqual({ port: 3000, sandboxId: "sandbox-abc" });
    }
    expect(sandboxHost("api.sandbox.example.com", "sandbox.example.com")).toBe("malformed");
    expect(sandboxHost("api.sandbox.example.com:8000", "sandbox.example.com")).toBe("malformed");
    // Several Host headers (Bun joins them) with one under the domain: never Bay's API, never a sandbox.
    expect(sandboxHost("3000-sandbox-abc.localhost:8000, localhost:8000", "localhost:8000")).toBe("malformed");
    expect(sandboxHost("localhost:8000, 3000-sandbox-abc.localhost:8000", "localhost:8000")).toBe("malformed");
    expect(sandboxHost("localhost:8000, 127.0.0.1:8000", "localhost:8000")).toBeNull();
    // Anything else that names the domain is never Bay's API either (the second review's spellings).
    for (const odd of [
      "x.localhost..:8000",
      "x.localhost...",
      "x.localhost:8000:8000",
      "x.localhost;",
      "x.localhost%2e",
      "[x.localhost]",
      "[::1].localhost",
      "3000-sandbox-abc.localhost:123456",
      "3000-sandbox-abc.localhostx",
    ]) {
      expect(sandboxHost(odd, "localhost:8000")).toBe("malformed");
    }
    for (const bad of [
      "03000-sandbox-a",
      "65536-sandbox-a",
      "3000-sandbox-",
      "3000-sandbox-a.b",
      "x-3000-sandbox-a",
      "3000_sandbox-a",
      "",
    ]) {
      expect(sandboxHost(`${bad}.localhost:8000`, "localhost:8000")).toBe("malformed");
    }
  });

  test("hostOnlyCookie: any Domain attribute, in any case or spacing, drops the cookie", () => {
    expect(hostOnlyCookie("a=1")).toBe(true);
    expect(hostOnlyCookie("a=domain; Path=/")).toBe(true);
    expect(hostOnlyCookie("domain=1; Path=/")).toBe(true);
    expect(hostOnlyCookie("a=1; Domain=x.test")).toBe(false);
    expect(hostOnlyCookie("a=1;domain =x")).toBe(false);
    expect(hostOnlyCookie("a=1; Path=/;  DoMaIn=")).toBe(false);
  });

  test("a sandbox_domain that is not a lower-case host name is refused at start", async () => {
    const { configSchema } = await import("../../src/bay/config.ts");
    for (const bad of ["Localhost:8000", "http://x", "x/y", "*.x", ".x", "x:0", "x:", "a..b"]) {
      expect(configSchema.safeParse({ e2b: { sandbox_domain: bad } }).success).toBe(false);
    }
    for (const good of ["localhost:8000", "sandbox.example.com", "a-b.c"]) {
      expect(configSchema.safeParse({ e2b: { sandbox_domain: good } }).success).toBe(true);
    }
  });

  test("without a domain, E2B answers no domain and such hosts are Bay's as before", async () => {
    const plain = await createMemoryBay();
    try {
      const res = await plain.bay.app.request("/e2b/v2/sandboxes", {
        method: "POST",
        headers: { "x-owner": "alice", "content-type": "application/json" },
        body: JSON.stringify({ templateID: "base" }),
      });
      const j = (await res.json()) as { sandboxID: string; domain: unknown };
      expect(j.domain).toBeNull();
      const r = await plain.bay.app.request(`http://8080-${j.sandboxID}.${DOMAIN}/health`, {
        headers: { host: `8080-${j.sandboxID}.${DOMAIN}` },
      });
      // Bay's host rules, as for any name it does not serve (never the sandbox's server).
      const body = (await r.json()) as { error?: { details?: { reason?: string } }; port?: number };
      expect(body.port).toBeUndefined();
      expect(body.error?.details?.reason).toBe("host_not_allowed");
    } finally {
      await plain.close();
    }
  });
});
