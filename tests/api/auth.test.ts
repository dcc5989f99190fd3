/**
 * Authentication and owner scoping over the real app: API keys (stored and
 * bootstrap), JWTs (HS256 secret and a JWKS served on 127.0.0.1), anonymous
 * mode, and the one 401 body for every bad credential.
 */
import { afterAnswersRan } from "../../src/bay/observability/after-answer.ts";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { createLogger } from "../../src/bay/logger.ts";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";

const BOOT_KEY = "bootstrap-key-0123456789abcdef";
const SECRET = "hs256-secret-0123456789abcdef-xyz";

const open: TestBay[] = [];
async function bay(config: Parameters<typeof createTestBay>[0] = {}): Promise<TestBay> {
  const t = await createTestBay(config);
  open.push(t);
  return t;
}
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const nowSec = () => Math.floor(Date.now() / 1000);

function hs256(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
}

async function expectUnauthorized(t: TestBay, headers: Record<string, string>): Promise<void> {
  const { status, body, res } = await t.json("GET", "/v1/sandboxes", { headers });
  expect(status).toBe(401);
  expect(body.error.code).toBe("unauthorized");
  expect(body.error.request_id).toBe(res.headers.get("x-request-id")!);
}

describe("API key mode", () => {
  test("a key created by the service authenticates as its owner; revoked keys stop working", async () => {
    const t = await bay({ config: { auth: { mode: "api_key" } } });
    const { key, record } = await t.bay.deps.apiKeys.create("alice", "ci");
    expect(key).toStartWith("bay_");
    const created = await t.json("POST", "/v1/sandboxes", { body: {}, headers: bearer(key) });
    expect(created.status).toBe(201);
    const listed = await t.json("GET", "/v1/sandboxes", { headers: bearer(key) });
    expect(listed.body.items.map((s: { id: string }) => s.id)).toEqual([created.body.id]);

    expect(await t.bay.deps.apiKeys.revoke(record.id)).toBe(true);
    await expectUnauthorized(t, bearer(key));
  });

  test("the stored record holds a hash and a prefix, never the key", async () => {
    const t = await bay({ config: { auth: { mode: "api_key" } } });
    const { key } = await t.bay.deps.apiKeys.create("alice");
    const rs = await t.bay.deps.stores.db.execute("SELECT * FROM api_keys");
    const row = JSON.stringify(rs.rows);
    expect(row).not.toContain(key);
    expect(row).toContain(key.slice(0, 10));
    expect(row).toContain(new Bun.CryptoHasher("sha256").update(key).digest("hex"));
  });

  test("last_used_at is recorded on use", async () => {
    const t = await bay({ config: { auth: { mode: "api_key" } } });
    const { key, record } = await t.bay.deps.apiKeys.create("alice");
    expect(record.lastUsedAt).toBeNull();
    expect((await t.call("GET", "/v1/sandboxes", { headers: bearer(key) })).status).toBe(200);
    // The write is fire-and-forget: poll for it, bounded.
    const after = await pollUntil(
      async () => (await t.bay.deps.apiKeys.list("alice"))[0]!.lastUsedAt,
      (v) => v !== null,
      5_000,
      "last_used_at set",
    );
    expect(typeof after).toBe("number");
  });

  test("a bootstrap key from config.auth.api_keys authenticates as its owner", async () => {
    const t = await bay({ config: { auth: { mode: "api_key", api_keys: [{ key: BOOT_KEY, owner: "ops" }] } } });
    const created = await t.json("POST", "/v1/sandboxes", { body: {}, headers: bearer(BOOT_KEY) });
    expect(created.status).toBe(201);
    const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT owner FROM sandboxes WHERE id = ?", args: [created.body.id] });
    expect(rs.rows[0]!.owner).toBe("ops");
  });

  test("a JWT-shaped bootstrap key still works as an API key", async () => {
    const dotted = "abcdefgh.ijklmnop.qrstuvwx";
    const t = await bay({ config: { auth: { mode: "api_key", api_keys: [{ key: dotted, owner: "ops" }], jwt: { secret: SECRET } } } });
    expect((await t.call("GET", "/v1/sandboxes", { headers: bearer(dotted) })).status).toBe(200);
  });

  test("X-Owner cannot override the authenticated owner", async () => {
    const t = await bay({ config: { auth: { mode: "api_key" } } });
    const alice = (await t.bay.deps.apiKeys.create("alice")).key;
    const bob = (await t.bay.deps.apiKeys.create("bob")).key;
    const sb = await t.json("POST", "/v1/sandboxes", { body: {}, headers: bearer(alice) });
    const asBob = await t.json("GET", `/v1/sandboxes/${sb.body.id}`, { headers: { ...bearer(bob), "x-owner": "alice" } });
    expect(asBob.status).toBe(404);
    expect(asBob.body.error.code).toBe("not_found");
    const list = await t.json("GET", "/v1/sandboxes", { headers: { ...bearer(bob), "x-owner": "alice" } });
    expect(list.body.items).toEqual([]);
    // Another owner's sandbox is as invisible to writes as to reads.
    expect((await t.call("DELETE", `/v1/sandboxes/${sb.body.id}`, { headers: bearer(bob) })).status).toBe(404);
    expect((await t.call("GET", `/v1/sandboxes/${sb.body.id}`, { headers: bearer(alice) })).status).toBe(200);
  });

  test("/health and /openapi.json need no credentials", async () => {
    const t = await bay({ config: { auth: { mode: "api_key" } } });
    expect((await t.call("GET", "/health")).status).toBe(200);
    expect((await t.call("GET", "/openapi.json")).status).toBe(200);
    await expectUnauthorized(t, {});
  });

  test("credentials never reach the logs", async () => {
    const lines: string[] = [];
    const logger = createLogger("debug", (l) => lines.push(l));
    const t = await bay({
      logger,
      config: { auth: { mode: "api_key", api_keys: [{ key: BOOT_KEY, owner: "ops" }], jwt: { secret: SECRET } } },
    });
    const badKey = "bay_this-is-a-wrong-key-that-must-not-be-logged";
    const badJwt = await hs256({ sub: "mallory", exp: nowSec() + 60 }, "another-secret-0123456789abcdef");
    const good = (await t.bay.deps.apiKeys.create("alice")).key;
    for (const token of [badKey, badJwt, good, BOOT_KEY]) await t.call("GET", "/v1/sandboxes", { headers: bearer(token) });
    // An unexpected failure (logged with its stack) on an authenticated request.
    const original = t.bay.deps.sandboxes.create.bind(t.bay.deps.sandboxes);
    t.bay.deps.sandboxes.create = async () => {
      throw new Error("boom");
    };
    expect((await t.call("POST", "/v1/sandboxes", { body: {}, headers: bearer(good) })).status).toBe(500);
    t.bay.deps.sandboxes.create = original;
    expect(lines.length).toBeGreaterThan(0);
    const log = lines.join("\n");
    for (const secret of [badKey, badJwt, good, BOOT_KEY, SECRET]) expect(log).not.toContain(secret);
  });
});

test("a rejected credential is logged with a reason and the request id, never the credential", async () => {
  const lines: string[] = [];
  const logger = createLogger("debug", (l) => lines.push(l));
  const t = await bay({ logger, config: { auth: { mode: "api_key", jwt: { secret: SECRET } } } });
  // The whole app: the request id reaches the line through the request context.
  const app = t.bay.app;
  const badKey = "bay_this-is-a-wrong-key-that-must-not-be-logged";
  const badJwt = await hs256({ sub: "mallory", exp: nowSec() + 60 }, "another-secret-0123456789abcdef");
  const cases: Array<[Record<string, string>, string]> = [
    [bearer(badKey), "invalid_api_key"],
    [bearer(badJwt), "invalid_jwt"],
    [{ authorization: `Basic ${badKey}` }, "malformed"],
    [{}, "missing"],
  ];
  for (const [headers, reason] of cases) {
    lines.length = 0;
    const res = await app.request("/v1/sandboxes", { headers: { ...headers, "x-request-id": "req-1" } });
    expect(res.status).toBe(401);
    await afterAnswersRan(); // the access line is written after the answer
    const entries = lines.map((l) => JSON.parse(l));
    expect(entries.filter((e) => e.msg === "authentication failed")).toEqual([
      expect.objectContaining({ msg: "authentication failed", reason, request_id: "req-1" }),
    ]);
    expect(entries.filter((e) => e.msg === "request")).toEqual([
      expect.objectContaining({ route: "/v1/sandboxes", status: 401, request_id: "req-1" }),
    ]);
    expect(lines.join("\n")).not.toContain(badKey);
    expect(lines.join("\n")).not.toContain(badJwt);
  }
  const good = (await t.bay.deps.apiKeys.create("alice")).key;
  expect((await app.request("/v1/sandboxes", { headers: bearer(good) })).status).toBe(200);
});

describe("every bad credential is 401 unauthorized", () => {
  let t: TestBay;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    t = await createTestBay({
      config: { auth: { mode: "api_key", jwt: { secret: SECRET, issuer: "https://issuer.test", audience: "bay" } } },
    });
    const revoked = await t.bay.deps.apiKeys.create("alice");
    await t.bay.deps.apiKeys.revoke(revoked.record.id);
    tokens.revoked = revoked.key;
    const base = { iss: "https://issuer.test", aud: "bay" };
    tokens.expired = await hs256({ ...base, sub: "alice", exp: nowSec() - 10 });
    tokens.notYet = await hs256({ ...base, sub: "alice", nbf: nowSec() + 600, exp: nowSec() + 1200 });
    tokens.wrongSecret = await hs256({ ...base, sub: "alice", exp: nowSec() + 60 }, "some-other-secret-0123456789abc");
    tokens.noSub = await hs256({ ...base, exp: nowSec() + 60 });
    tokens.wrongIssuer = await hs256({ ...base, iss: "https://evil.test", sub: "alice", exp: nowSec() + 60 });
    tokens.wrongAudience = await hs256({ ...base, aud: "other", sub: "alice", exp: nowSec() + 60 });
    tokens.noIssuer = await hs256({ aud: "bay", sub: "alice", exp: nowSec() + 60 });
    tokens.algNone = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"alice"}').toString("base64url")}.`;
    tokens.valid = await hs256({ ...base, sub: "alice", exp: nowSec() + 60 });
    // Stored, a lone surrogate becomes U+FFFD: "victim\ud800" would be the owner "victim\ufffd" is.
    tokens.loneSurrogate = await hs256({ ...base, sub: "victim\ud800", exp: nowSec() + 60 });
  });
  afterAll(async () => {
    await t.close();
  });

  const cases: Array<[string, () => Record<string, string>]> = [
    ["missing Authorization", () => ({})],
    ["Basic scheme", () => ({ authorization: "Basic x" })],
    ["Bearer without a token", () => ({ authorization: "Bearer" })],
    ["Bearer with blank token", () => ({ authorization: "Bearer    " })],
    ["two tokens", () => ({ authorization: "Bearer a b" })],
    ["unknown API key", () => bearer("bay_unknownunknownunknownunknown")],
    ["revoked API key", () => bearer(tokens.revoked!)],
    ["expired JWT", () => bearer(tokens.expired!)],
    ["JWT not yet valid (nbf)", () => bearer(tokens.notYet!)],
    ["JWT signed with another secret", () => bearer(tokens.wrongSecret!)],
    ["JWT without sub", () => bearer(tokens.noSub!)],
    ["JWT from another issuer", () => bearer(tokens.wrongIssuer!)],
    ["JWT for another audience", () => bearer(tokens.wrongAudience!)],
    ["JWT without the configured issuer", () => bearer(tokens.noIssuer!)],
    ["unsigned JWT (alg none)", () => bearer(tokens.algNone!)],
    ["garbage JWT", () => bearer("aaa.bbb.ccc")],
    ["JWT whose sub holds a lone surrogate (not Unicode text)", () => bearer(tokens.loneSurrogate!)],
    ["X-Owner only (not anonymous mode)", () => ({ "x-owner": "alice" })],
  ];
  for (const [name, headers] of cases) test(name, () => expectUnauthorized(t, headers()));

  test("the valid HS256 token is accepted, and sub is the owner", async () => {
    const created = await t.json("POST", "/v1/sandboxes", { body: {}, headers: bearer(tokens.valid!) });
    expect(created.status).toBe(201);
    const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT owner FROM sandboxes WHERE id = ?", args: [created.body.id] });
    expect(rs.rows[0]!.owner).toBe("jwt:alice"); // JWT owners have their own namespace
    expect((await t.call("GET", `/v1/sandboxes/${created.body.id}`, { headers: bearer(tokens.valid!) })).status).toBe(200);
  });

  test("the scheme name is case-insensitive", async () => {
    expect((await t.call("GET", "/v1/sandboxes", { headers: { authorization: `bearer ${tokens.valid}` } })).status).toBe(200);
  });
});

describe("JWKS", () => {
  let server: ReturnType<typeof Bun.serve>;
  let privateKey: CryptoKey;
  let otherKey: CryptoKey;
  let jwksHits = 0;
  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    privateKey = pair.privateKey;
    otherKey = (await generateKeyPair("RS256")).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => {
        jwksHits++;
        return Response.json({ keys: [jwk] });
      },
    });
  });
  afterAll(() => {
    server.stop(true);
  });

  const rs256 = (claims: Record<string, unknown>, key: CryptoKey = privateKey, kid = "k1") =>
    new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid }).sign(key);

  test("RS256 tokens verified against the JWKS; sub is the owner", async () => {
    const t = await bay({
      config: {
        auth: {
          mode: "api_key",
          jwt: { jwks_url: `http://127.0.0.1:${server.port}/jwks.json`, issuer: "https://idp.test", audience: "bay" },
        },
      },
    });
    const good = await rs256({ sub: "carol", iss: "https://idp.test", aud: "bay", exp: nowSec() + 60 });
    const created = await t.json("POST", "/v1/sandboxes", { body: {}, headers: bearer(good) });
    expect(created.status).toBe(201);
    expect(jwksHits).toBeGreaterThan(0);
    const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT owner FROM sandboxes WHERE id = ?", args: [created.body.id] });
    expect(rs.rows[0]!.owner).toBe("jwt:carol");

    await expectUnauthorized(t, bearer(await rs256({ sub: "carol", iss: "https://idp.test", aud: "bay", exp: nowSec() + 60 }, otherKey)));
    await expectUnauthorized(t, bearer(await rs256({ sub: "carol", iss: "https://idp.test", aud: "bay", exp: nowSec() - 5 })));
    await expectUnauthorized(t, bearer(await rs256({ sub: "carol", iss: "https://idp.test", aud: "nope", exp: nowSec() + 60 })));
    // Without a configured secret, an HS256 token is refused outright (no alg confusion).
    await expectUnauthorized(t, bearer(await hs256({ sub: "carol", aud: "bay", exp: nowSec() + 60 })));
  });

  test("secret and JWKS together: the token's alg picks the key", async () => {
    const t = await bay({
      config: {
        auth: {
          mode: "api_key",
          jwt: { secret: SECRET, jwks_url: `http://127.0.0.1:${server.port}/jwks.json`, issuer: "https://idp.test", audience: "bay" },
        },
      },
    });
    expect(
      (
        await t.call("GET", "/v1/sandboxes", {
          headers: bearer(await hs256({ sub: "a", iss: "https://idp.test", aud: "bay", exp: nowSec() + 60 })),
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await t.call("GET", "/v1/sandboxes", {
          headers: bearer(await rs256({ sub: "b", iss: "https://idp.test", aud: "bay", exp: nowSec() + 60 })),
        })
      ).status,
    ).toBe(200);
  });

  test("an unreachable JWKS gives 401 and a warning without the token", async () => {
    const lines: string[] = [];
    const t = await bay({
      logger: createLogger("debug", (l) => lines.push(l)),
      config: { auth: { mode: "api_key", jwt: { jwks_url: "http://127.0.0.1:9/jwks.json", issuer: "https://idp.test", audience: "bay" } } },
    });
    const token = await rs256({ sub: "carol", iss: "https://idp.test", aud: "bay", exp: nowSec() + 60 });
    await expectUnauthorized(t, bearer(token));
    expect(lines.some((l) => l.includes("JWKS unavailable"))).toBe(true);
    expect(lines.join("\n")).not.toContain(token);
  });
});

describe("anonymous mode", () => {
  test("X-Owner names the owner; without it the default owner is used", async () => {
    const t = await bay({ config: { auth: { mode: "anonymous", default_owner: "dev" } } });
    const a = await t.json("POST", "/v1/sandboxes", { body: {}, headers: { "x-owner": "alice" } });
    const b = await t.json("POST", "/v1/sandboxes", { body: {}, headers: { "x-owner": "bob" } });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    // No X-Owner at all: app.request directly (the harness would add one).
    const anon = await t.bay.app.request("/v1/sandboxes", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(anon.status).toBe(201);
    const rs = await t.bay.deps.stores.db.execute("SELECT owner FROM sandboxes ORDER BY owner");
    expect(rs.rows.map((r) => r.owner)).toEqual(["anon:alice", "anon:bob", "anon:dev"]);
    expect((await t.call("GET", `/v1/sandboxes/${a.body.id}`, { owner: "bob" })).status).toBe(404);
    expect((await t.call("GET", `/v1/sandboxes/${a.body.id}`, { owner: "alice" })).status).toBe(200);
  });

  test("an invalid X-Owner is a validation error", async () => {
    const t = await bay({ config: { auth: { mode: "anonymous" } } });
    const { status, body } = await t.json("GET", "/v1/sandboxes", { headers: { "x-owner": "bad owner!" } });
    expect(status).toBe(400);
    expect(body.error.code).toBe("validation_error");
  });

  test("a Bearer token, when sent, is still verified", async () => {
    const t = await bay({ config: { auth: { mode: "anonymous" } } });
    await expectUnauthorized(t, bearer("bay_wrong"));
    const { key } = await t.bay.deps.apiKeys.create("erin");
    const created = await t.json("POST", "/v1/sandboxes", { body: {}, headers: { ...bearer(key), "x-owner": "alice" } });
    const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT owner FROM sandboxes WHERE id = ?", args: [created.body.id] });
    expect(rs.rows[0]!.owner).toBe("erin");
  });

  test("/health and /openapi.json need no credentials", async () => {
    const t = await bay({ config: { auth: { mode: "anonymous" } } });
    expect((await t.bay.app.request("/health")).status).toBe(200);
    expect((await t.bay.app.request("/openapi.json")).status).toBe(200);
  });
});
