/**
 * Secrets stay out of logs and responses: a bad or good bearer token (API key,
 * JWT or the metrics token) never appears in a log line (access lines
 * included) or an error body, query strings never reach the access log, and
 * profile env that references host env (`${NAME}`) reaches the container
 * without GET /v1/profiles (or a log line) ever echoing its value. Logs are
 * captured at debug level.
 */
import { afterAnswersRan } from "../../src/bay/observability/after-answer.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { buildBay, type Bay } from "../../src/bay/bootstrap.ts";
import { configSchema } from "../../src/bay/config.ts";
import { createLogger } from "../../src/bay/logger.ts";
import { removeInstanceResources, uniqueInstanceId } from "../support/harness.ts";
import { requireShipImages } from "./support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";

const GOOD_KEY = `bay-good-key-${crypto.randomUUID()}`;
const BAD_KEY = `bay-bad-key-${crypto.randomUUID()}`;
const JWT_SECRET = `jwt-secret-${crypto.randomUUID()}`;
const HOST_SECRET = `host-secret-${crypto.randomUUID()}`;
const LITERAL_SECRET = `literal-secret-${crypto.randomUUID()}`;
const METRICS_TOKEN = `metrics-token-${crypto.randomUUID()}`;
const QUERY_SECRET = `query-secret-${crypto.randomUUID()}`;

const lines: string[] = [];
let bay: Bay;
let dir = "";
const instanceId = uniqueInstanceId();

beforeAll(async () => {
  await requireShipImages();
  dir = mkdtempSync(join(tmpdir(), "bay-secrets-"));
  const config = configSchema.parse({
    database: { url: `file:${join(dir, "bay.db")}` },
    driver: { instance_id: instanceId },
    auth: { mode: "api_key", api_keys: [{ key: GOOD_KEY, owner: "alice" }], jwt: { secret: JWT_SECRET } },
    metrics: { token: METRICS_TOKEN },
    profiles: [
      { id: "secretive", image: SHIP_IMAGE, memory_mb: 256, env: { API_TOKEN: "${BAY_TEST_HOST_SECRET}", PLAIN: LITERAL_SECRET } },
    ],
  });
  bay = await buildBay(config, { logger: createLogger("debug", (l) => lines.push(l)), hostEnv: { BAY_TEST_HOST_SECRET: HOST_SECRET } });
});
afterAll(async () => {
  if (bay) {
    await removeInstanceResources(bay, instanceId);
    await bay.close();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, token: string, body?: unknown, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...extra };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await bay.app.request(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  await afterAnswersRan(); // its access line is written once the answer is on its way
  const text = await res.text();
  return {
    status: res.status,
    text,
    headers: JSON.stringify(Object.fromEntries(res.headers as unknown as Iterable<[string, string]>)),
    json: () => JSON.parse(text),
  };
}

const logs = () => lines.join("\n");

describe("credentials never in logs or error bodies", () => {
  test("bad API key, bad JWT, malformed header: 401 without the token anywhere", async () => {
    const badJwt = await new SignJWT({ sub: "mallory" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(`wrong-${JWT_SECRET}`));
    const expiredJwt = await new SignJWT({ sub: "alice" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(JWT_SECRET));
    for (const token of [BAD_KEY, badJwt, expiredJwt, `${BAD_KEY}.x.y`]) {
      const r = await call("GET", "/v1/sandboxes", token);
      expect(r.status).toBe(401);
      expect(r.json().error.code).toBe("unauthorized");
      for (const secret of [token, JWT_SECRET]) {
        expect(r.text).not.toContain(secret);
        expect(r.headers).not.toContain(secret);
        expect(logs()).not.toContain(secret);
      }
    }
  });

  test("a good key works and is not logged either", async () => {
    const r = await call("GET", "/v1/sandboxes", GOOD_KEY);
    expect(r.status).toBe(200);
    expect(logs()).not.toContain(GOOD_KEY);
  });
});

describe("profile env from host env", () => {
  test("GET /v1/profiles never returns env values (host-referenced or literal)", async () => {
    const r = await call("GET", "/v1/profiles", GOOD_KEY);
    expect(r.status).toBe(200);
    expect(r.json().items.map((p: { id: string }) => p.id)).toEqual(["secretive"]);
    expect(r.text).not.toContain(HOST_SECRET);
    expect(r.text).not.toContain(LITERAL_SECRET);
    expect(r.text).not.toContain("BAY_TEST_HOST_SECRET");
  });

  test("the value reaches the container (echo $API_TOKEN) and no log line carries it", async () => {
    const created = await call("POST", "/v1/sandboxes", GOOD_KEY, { profile: "secretive" });
    expect(created.status).toBe(201);
    const id = created.json().id;
    const r = await call("POST", `/v1/sandboxes/${id}/shell/exec`, GOOD_KEY, { command: 'echo "$API_TOKEN|$PLAIN"' });
    expect(r.status).toBe(200);
    expect(r.json().output.trim()).toBe(`${HOST_SECRET}|${LITERAL_SECRET}`);
    const sb = await call("GET", `/v1/sandboxes/${id}`, GOOD_KEY);
    expect(sb.text).not.toContain(HOST_SECRET);
    expect(lines.length).toBeGreaterThan(0);
    expect(logs()).not.toContain(HOST_SECRET);
    expect(logs()).not.toContain(LITERAL_SECRET);
    expect(logs()).not.toContain(GOOD_KEY);
    expect((await call("DELETE", `/v1/sandboxes/${id}`, GOOD_KEY)).status).toBe(204);
  });
});

describe("the access log", () => {
  const access = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "request");

  test("has a line for every request, rejected ones included, and no credential or query value in any", async () => {
    const before = access().length;
    const badJwt = await new SignJWT({ sub: "mallory" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(`wrong-${JWT_SECRET}`));
    expect((await call("GET", "/v1/sandboxes", BAD_KEY)).status).toBe(401);
    expect((await call("GET", "/v1/sandboxes", badJwt)).status).toBe(401);
    expect((await call("GET", `/v1/sandboxes?cursor=${QUERY_SECRET}`, GOOD_KEY)).status).toBe(400);
    expect((await call("GET", `/v1/sandboxes/sandbox-x/filesystem/files?path=${QUERY_SECRET}`, GOOD_KEY)).status).toBe(404);
    expect(
      (await call("GET", "/v1/profiles", GOOD_KEY, undefined, { "x-request-id": "req-secrets", cookie: `session=${QUERY_SECRET}` })).status,
    ).toBe(200);
    const added = access().slice(before);
    expect(added.map((l) => l.status)).toEqual([401, 401, 400, 404, 200]);
    expect(added[4]).toMatchObject({ request_id: "req-secrets", owner: "alice", route: "/v1/profiles" });
    for (const secret of [GOOD_KEY, BAD_KEY, badJwt, JWT_SECRET, QUERY_SECRET]) expect(logs()).not.toContain(secret);
  });

  test("/metrics: the token is required, and neither it nor a wrong one is logged", async () => {
    expect((await call("GET", "/metrics", `${METRICS_TOKEN}-wrong`)).status).toBe(401);
    expect((await call("GET", "/metrics", GOOD_KEY)).status).toBe(401);
    const ok = await call("GET", "/metrics", METRICS_TOKEN);
    expect(ok.status).toBe(200);
    expect(ok.text).not.toContain(METRICS_TOKEN);
    expect(ok.text).not.toContain("alice");
    expect(logs()).not.toContain(METRICS_TOKEN);
  });

  test("MCP: a tool call as alice is logged by route, the key nowhere", async () => {
    const res = await bay.app.request("/mcp", {
      method: "POST",
      headers: { authorization: `Bearer ${GOOD_KEY}`, "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "list_sandboxes", arguments: {} } }),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).not.toContain(GOOD_KEY);
    await afterAnswersRan(); // the access lines are written once the answers are on their way
    const tail = access().slice(-2);
    expect(tail.map((l) => l.route)).toEqual(["/v1/sandboxes", "/mcp"]);
    expect(logs()).not.toContain(GOOD_KEY);
  });
});
