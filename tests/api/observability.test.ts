/**
 * Request observability without containers: one JSON access line per request
 * (route template, status, duration, owner, sandbox id, request id), the
 * request id on domain lines through the request context, the pretty format,
 * the access-log switch, and GET /metrics: its families, route templates
 * instead of ids, no owners in labels, and its access rules.
 */
import { afterAnswersRan } from "../../src/bay/observability/after-answer.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { createLogger, type LogFormat } from "../../src/bay/logger.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";

let t: TestBay | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

type Line = Record<string, unknown> & { msg: string };

async function bayWithLog(config: Record<string, unknown> = {}, format: LogFormat = "json") {
  const lines: string[] = [];
  t = await createTestBay({ logger: createLogger("info", (l) => lines.push(l), format), config });
  return { t, lines, parsed: () => lines.map((l) => JSON.parse(l) as Line) };
}

describe("access log", () => {
  test("one line per request: method, route template, status, duration, owner, sandbox id, request id", async () => {
    const { t, parsed } = await bayWithLog();
    const created = await t.json("POST", "/v1/sandboxes", { body: {}, owner: "carol", headers: { "x-request-id": "req-create" } });
    const id = created.body.id as string;
    await t.json("GET", `/v1/sandboxes/${id}`, { owner: "carol", headers: { "x-request-id": "req-get" } });
    await t.json("GET", `/v1/sandboxes/${id}/filesystem/files?path=notes/secret-name.txt`, {
      owner: "dave",
      headers: { "x-request-id": "req-foreign" },
    });
    await t.json("GET", "/no/such/route/sandbox-xyz", { headers: { "x-request-id": "req-404" } });
    const access = parsed().filter((l) => l.msg === "request");
    expect(access.map((l) => l.request_id)).toEqual(["req-create", "req-get", "req-foreign", "req-404"]);
    expect(access[0]).toMatchObject({ method: "POST", route: "/v1/sandboxes", status: 201, owner: "anon:carol", level: "info" });
    expect(access[1]).toMatchObject({ method: "GET", route: "/v1/sandboxes/:id", status: 200, owner: "anon:carol", sandbox_id: id });
    expect(access[2]).toMatchObject({ route: "/v1/sandboxes/:id/filesystem/files", status: 404, owner: "anon:dave", sandbox_id: id });
    expect(access[3]).toMatchObject({ method: "GET", route: "unmatched", status: 404 });
    expect(access[3]).not.toHaveProperty("owner");
    for (const l of access) expect(typeof l.duration_ms).toBe("number");
    // The query string and raw unmatched paths never reach the log.
    const text = JSON.stringify(parsed());
    expect(text).not.toContain("secret-name");
    expect(text).not.toContain("/no/such/route");
  });

  test("E2B's alias lookup is labelled with its spec path, and any other path near it as unmatched", async () => {
    const { t, parsed } = await bayWithLog();
    for (const path of [
      "/e2b/templates/aliases/base",
      "/e2b/templates/%61liases/base",
      "/e2b/templates/base/base",
      "/e2b/templates/%zz/base",
    ]) {
      await t.bay.app.request(path, { headers: { "x-owner": "alice" } });
    }
    await afterAnswersRan(); // access lines are written after each answer
    const routes = parsed()
      .filter((l) => l.msg === "request")
      .map((l) => [l.route, l.status]);
    expect(routes).toEqual([
      ["/e2b/templates/aliases/:alias", 200],
      ["/e2b/templates/aliases/:alias", 200],
      ["unmatched", 404],
      ["unmatched", 404],
    ]);
  });

  test("domain lines carry the request id without anyone passing it", async () => {
    const { t, parsed } = await bayWithLog();
    const created = await t.json("POST", "/v1/sandboxes", { body: {}, headers: { "x-request-id": "req-a" } });
    await t.json("DELETE", `/v1/sandboxes/${created.body.id}`, { headers: { "x-request-id": "req-b" } });
    const lines = parsed();
    expect(lines.find((l) => l.msg === "sandbox created")).toMatchObject({ request_id: "req-a", sandbox_id: created.body.id });
    expect(lines.find((l) => l.msg === "sandbox deleted")).toMatchObject({ request_id: "req-b", sandbox_id: created.body.id });
    // Lines outside any request (a reaper beat) carry none.
    const before = lines.length;
    await t.bay.reaper.runOnce();
    for (const l of parsed().slice(before)) expect(l).not.toHaveProperty("request_id");
  });

  test("concurrent requests keep their own ids", async () => {
    const { t, parsed } = await bayWithLog();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.json("POST", "/v1/sandboxes", { body: {}, owner: `o${i}`, headers: { "x-request-id": `req-${i}` } }),
      ),
    );
    const created = parsed().filter((l) => l.msg === "sandbox created");
    expect(created.length).toBe(20);
    for (const l of created) expect(l.request_id).toBe(`req-${String(l.owner).slice("anon:o".length)}`);
  });

  test("log.access: false writes no access line; domain lines stay", async () => {
    const { t, parsed } = await bayWithLog({ log: { access: false } });
    await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(parsed().filter((l) => l.msg === "request")).toEqual([]);
    expect(parsed().some((l) => l.msg === "sandbox created")).toBe(true);
  });

  test("pretty format: one readable line per record, fields as key=value", async () => {
    const { t, lines } = await bayWithLog({}, "pretty");
    await t.json("GET", "/v1/sandboxes/sandbox-nope", { owner: "erin", headers: { "x-request-id": "req-p" } });
    const access = lines.find((l) => l.includes("/v1/sandboxes/:id"))!;
    expect(access).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}GET \/v1\/sandboxes\/:id 404 [\d.]+ms {2}.*request_id=req-p/);
    expect(access).toContain("owner=anon:erin");
    expect(() => JSON.parse(access)).toThrow();
  });
});

describe("GET /metrics", () => {
  const scrape = async (t: TestBay, headers: Record<string, string> = {}) => {
    const res = await t.call("GET", "/metrics", { headers });
    return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
  };

  test("request series use route templates; no owner or id appears anywhere", async () => {
    const { t } = await bayWithLog();
    const id = (await t.json("POST", "/v1/sandboxes", { body: {}, owner: "frank-the-owner" })).body.id as string;
    await t.json("GET", `/v1/sandboxes/${id}`, { owner: "frank-the-owner" });
    await t.json("GET", "/v1/sandboxes/sandbox-unknown", { owner: "frank-the-owner" });
    await t.json("PATCH", "/v1/sandboxes", {});
    const m = await scrape(t);
    expect(m.status).toBe(200);
    expect(m.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(m.text).toContain('bay_http_requests_total{method="POST",route="/v1/sandboxes",status="201"} 1');
    expect(m.text).toContain('bay_http_requests_total{method="GET",route="/v1/sandboxes/:id",status="200"} 1');
    expect(m.text).toContain('bay_http_requests_total{method="GET",route="/v1/sandboxes/:id",status="404"} 1');
    expect(m.text).toContain('bay_http_requests_total{method="PATCH",route="unmatched",status="405"} 1');
    expect(m.text).toContain('bay_http_request_duration_seconds_count{method="GET",route="/v1/sandboxes/:id",status="200"} 1');
    expect(m.text).not.toContain(id);
    expect(m.text).not.toContain("frank-the-owner");
    expect(m.text).not.toContain("sandbox-unknown");
  });

  test("every family the contract lists is there, pool size 0 per profile", async () => {
    const { t } = await bayWithLog();
    await t.json("POST", "/v1/sandboxes", { body: {} });
    const { text } = await scrape(t);
    for (const family of [
      "bay_http_requests_total",
      "bay_http_request_duration_seconds",
      "bay_sandboxes",
      "bay_sandbox_starts_total",
      "bay_sandbox_start_duration_seconds",
      "bay_ship_errors_total",
      "bay_reaper_actions_total",
      "bay_reconcile_actions_total",
      "bay_idempotency_replays_total",
      "bay_warm_pool_size",
      "bay_ship_channels_open",
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toContain('bay_sandboxes{profile="python-default",status="idle"} 1');
    expect(text).toContain('bay_sandboxes{profile="python-data",status="ready"} 0');
    expect(text).toContain('bay_warm_pool_size{profile="python-default"} 0');
    expect(text).toContain('bay_sandbox_starts_total{profile="python-data",kind="pool",outcome="ok"} 0');
  });

  test("idempotency replays, reaper and reconcile actions are counted", async () => {
    const { t } = await bayWithLog();
    const key = { "idempotency-key": "k-1" };
    await t.json("POST", "/v1/sandboxes", { body: { ttl: 3600 }, headers: key });
    const replay = await t.json("POST", "/v1/sandboxes", { body: { ttl: 3600 }, headers: key });
    expect(replay.res.headers.get("idempotent-replayed")).toBe("true");
    await t.bay.deps.stores.sandboxes.setExpiresAt(replay.body.id, Date.now() - 1000);
    await t.bay.reaper.runOnce();
    const { text } = await scrape(t);
    expect(text).toContain("bay_idempotency_replays_total 1");
    expect(text).toContain('bay_reaper_actions_total{action="expired"} 1');
    expect(text).toContain('bay_reconcile_actions_total{action="orphan_container"} 0');
  });

  test("with the database gone it still answers, without the sandboxes family, and counts the failure", async () => {
    const { t } = await bayWithLog();
    t.bay.deps.stores.db.close();
    const m = await scrape(t);
    expect(m.status).toBe(200);
    expect(m.text).not.toContain("bay_sandboxes{");
    expect(m.text).toContain('bay_metrics_collect_errors_total{collector="sandboxes"} 1');
  });

  test("without a token: loopback only, and a proxied request is not loopback", async () => {
    const { t } = await bayWithLog();
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: t.bay.app.fetch });
    try {
      const direct = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(direct.status).toBe(200);
      for (const header of [{ "x-forwarded-for": "203.0.113.9" }, { forwarded: "for=203.0.113.9" }] as Record<string, string>[]) {
        const proxied = await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: header });
        expect(proxied.status).toBe(403);
        expect(((await proxied.json()) as { error: { code: string } }).error.code).toBe("forbidden");
      }
    } finally {
      server.stop(true);
    }
  });

  test("with metrics.token: required from everyone, owner credentials do not open it", async () => {
    const token = "metrics-token-0123456789abcdef";
    const { t } = await bayWithLog({
      metrics: { token },
      auth: { mode: "api_key", api_keys: [{ key: "alice-key-0123456789abcdef", owner: "alice" }] },
    });
    expect((await scrape(t)).status).toBe(401);
    expect((await scrape(t, { authorization: "Bearer alice-key-0123456789abcdef" })).status).toBe(401);
    expect((await scrape(t, { authorization: `Bearer ${token}x` })).status).toBe(401);
    const ok = await scrape(t, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain("bay_build_info");
  });
});
