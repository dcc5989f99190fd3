/**
 * Idempotency-Key, continued (idempotency.test.ts has format, replay and
 * conflicts): what is (not) stored, the TTL, claims that survive a crash, a
 * replay after a restart, and the request fingerprint. Real app, real libSQL file.
 */
import { describe, expect, test } from "bun:test";
import { fingerprint } from "../../src/bay/api/middleware/idempotency.ts";
import { canonicalJson } from "../../src/protocol/canonical-json.ts";
import { databaseUnavailable } from "../../src/bay/store/database-errors.ts";
import { createTestBay, testBays } from "../support/harness.ts";
import { countSandboxes, idem, post, wrap } from "./support/idempotency.ts";

const bay = testBays();

describe("what is stored", () => {
  test("a first attempt that failed with 5xx does not poison the key", async () => {
    const t = await bay();
    let calls = 0;
    const restore = wrap(t.bay.deps.sandboxes, "create", (original) => async (...args) => {
      if (calls++ === 0) throw new Error("simulated failure");
      return original(...args);
    });
    const failed = await post(t, "/v1/sandboxes", "{}", idem("retry-me"));
    expect(failed.status).toBe(500);
    expect(((await failed.json()) as any).error.code).toBe("internal_error");
    const retry = await post(t, "/v1/sandboxes", "{}", idem("retry-me"));
    expect(retry.status).toBe(201);
    const replay = await post(t, "/v1/sandboxes", "{}", idem("retry-me"));
    expect(await replay.text()).toBe(await retry.text());
    restore();
    expect(calls).toBe(2);
    expect(await countSandboxes(t)).toBe(1);
  });

  test("a 429 is not stored: the same key succeeds once quota frees up", async () => {
    const t = await bay({ config: { limits: { max_sandboxes_per_owner: 1 } } });
    const existing = (await (await post(t, "/v1/sandboxes", "{}", {})).json()) as any;
    const limited = await post(t, "/v1/sandboxes", "{}", idem("q"));
    expect(limited.status).toBe(429);
    expect((await t.call("DELETE", `/v1/sandboxes/${existing.id}`)).status).toBe(204);
    const retry = await post(t, "/v1/sandboxes", "{}", idem("q"));
    expect(retry.status).toBe(201);
  });

  test("a 409 state conflict is not stored: the same key succeeds once the conflict is gone", async () => {
    const t = await bay();
    const ws = (await (await post(t, "/v1/workspaces", "{}", {})).json()) as any;
    const holder = (await (await post(t, "/v1/sandboxes", JSON.stringify({ workspace_id: ws.id }), {})).json()) as any;
    const body = JSON.stringify({ workspace_id: ws.id });
    const busy = await post(t, "/v1/sandboxes", body, idem("w"));
    expect(busy.status).toBe(409);
    expect((await t.call("DELETE", `/v1/sandboxes/${holder.id}`)).status).toBe(204);
    const retry = await post(t, "/v1/sandboxes", body, idem("w"));
    expect(retry.status).toBe(201);
    expect(((await retry.json()) as any).workspace_id).toBe(ws.id);
  });

  test("a 4xx outcome of the request itself (unknown profile) is stored and replayed", async () => {
    const t = await bay();
    const first = await post(t, "/v1/sandboxes", '{"profile":"nope"}', idem("p"));
    expect(first.status).toBeGreaterThanOrEqual(400);
    expect(first.status).toBeLessThan(500);
    const again = await post(t, "/v1/sandboxes", '{"profile":"nope"}', idem("p"));
    expect(again.status).toBe(first.status);
    // The same error, except that it names the request being answered (issue 12).
    const [a, b] = [(await first.json()) as any, (await again.json()) as any];
    expect(b.error.request_id).toBe(again.headers.get("x-request-id"));
    expect(b.error.request_id).not.toBe(a.error.request_id);
    expect({ ...b.error, request_id: null }).toEqual({ ...a.error, request_id: null });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });
});

describe("TTL", () => {
  test("the TTL comes from config; an expired key may be reused with another body", async () => {
    const t = await bay({ config: { idempotency: { ttl_seconds: 1 } } });
    const a = (await (await post(t, "/v1/sandboxes", '{"ttl":60}', idem("short"))).json()) as any;
    const row = await t.bay.deps.stores.db.execute("SELECT created_at, expires_at FROM idempotency_keys");
    expect(Number(row.rows[0]!.expires_at) - Number(row.rows[0]!.created_at)).toBe(1000);
    expect((await post(t, "/v1/sandboxes", '{"ttl":61}', idem("short"))).status).toBe(409);
    await Bun.sleep(1100);
    const b = await post(t, "/v1/sandboxes", '{"ttl":61}', idem("short"));
    expect(b.status).toBe(201);
    expect(((await b.json()) as any).id).not.toBe(a.id);
    expect(await countSandboxes(t)).toBe(2);
  });

  test("the default TTL is 24 h", async () => {
    const t = await bay();
    await post(t, "/v1/sandboxes", "{}", idem("day"));
    const row = await t.bay.deps.stores.db.execute("SELECT created_at, expires_at FROM idempotency_keys");
    expect(Number(row.rows[0]!.expires_at) - Number(row.rows[0]!.created_at)).toBe(86_400_000);
  });

  test("purgeExpired deletes only expired records", async () => {
    const t = await bay();
    const store = t.bay.deps.stores.idempotency;
    const now = Date.now();
    const claimOf = (r: Awaited<ReturnType<typeof store.claim>>) => {
      if (r.kind !== "claimed") throw new Error(`expected a claim, got ${r.kind}`);
      return r.claim;
    };
    expect(
      await store.complete(claimOf(await store.claim("alice", "old", "fp", now - 10_000, 5_000)), { status: 201, body: "{}", headers: {} }),
    ).toBe(true);
    expect(
      await store.complete(claimOf(await store.claim("alice", "new", "fp", now, 60_000)), { status: 201, body: "{}", headers: {} }),
    ).toBe(true);
    expect(await store.purgeExpired(now)).toBe(1);
    const rs = await t.bay.deps.stores.db.execute("SELECT key FROM idempotency_keys");
    expect(rs.rows.map((r) => r.key)).toEqual(["new"]);
    expect(await store.purgeExpired(now)).toBe(0);
  });
});

describe("claims: only the holder finishes a claim, and a crash never yields a second resource", () => {
  test("a stale claim taken over: the old holder can neither complete nor release the new holder's record", async () => {
    const t = await bay();
    const store = t.bay.deps.stores.idempotency;
    const now = Date.now();
    const first = await store.claim("anon:alice", "k", "fp", now - 120_000, 86_400_000);
    if (first.kind !== "claimed") throw new Error("expected a claim");
    // The first holder stalls past the in-flight timeout; a retry takes the key over.
    const second = await store.claim("anon:alice", "k", "fp", now, 86_400_000);
    if (second.kind !== "claimed") throw new Error(`expected the stale claim to be taken over, got ${second.kind}`);
    expect(second.claim.token).not.toBe(first.claim.token);
    await store.release(first.claim);
    expect(await store.complete(first.claim, { status: 201, body: '{"from":"first"}', headers: {} })).toBe(false);
    expect(await store.complete(second.claim, { status: 201, body: '{"from":"second"}', headers: {} })).toBe(true);
    const replay = await store.claim("anon:alice", "k", "fp", now + 1, 86_400_000);
    expect(replay.kind === "replay" && replay.response.body).toBe('{"from":"second"}');
  });

  test("a create whose process died before answering: the retry answers with the sandbox it created, not a second one", async () => {
    const t = await bay();
    const store = t.bay.deps.stores.idempotency;
    const body = '{"ttl":3600}';
    const fp = fingerprint("POST", "/v1/sandboxes", body);
    // What a crashed Bay leaves: an in-flight claim, and the sandbox created in the same transaction.
    const claimed = await store.claim("anon:alice", "crash", fp, Date.now() - 120_000, 86_400_000);
    if (claimed.kind !== "claimed") throw new Error("expected a claim");
    const created = await t.bay.deps.sandboxes.create("anon:alice", { profile: "python-default", ttl: 3600 }, claimed.claim);
    expect(await countSandboxes(t)).toBe(1);

    const retry = await post(t, "/v1/sandboxes", body, idem("crash"));
    expect(retry.status).toBe(201);
    expect(((await retry.json()) as { id: string }).id).toBe(created.id);
    expect(await countSandboxes(t)).toBe(1);
    // …and that answer is now the key's stored response.
    const again = await post(t, "/v1/sandboxes", body, idem("crash"));
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(((await again.json()) as { id: string }).id).toBe(created.id);
  });

  test("a create whose transaction committed but whose answer failed (a database timeout): the retry answers with that sandbox", async () => {
    const t = await bay();
    const made: string[] = [];
    const restore = wrap(t.bay.deps.sandboxes, "create", (original) => async (...args) => {
      const sb = await original(...args);
      made.push(sb.id);
      if (made.length === 1) throw databaseUnavailable("timeout", new Error("no answer in time"));
      return sb;
    });
    const failed = await post(t, "/v1/sandboxes", "{}", idem("lost-answer"));
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as any).error.code).toBe("database_unavailable");
    const retry = await post(t, "/v1/sandboxes", "{}", idem("lost-answer"));
    restore();
    expect(retry.status).toBe(201);
    expect(((await retry.json()) as { id: string }).id).toBe(made[0]!);
    expect(await countSandboxes(t)).toBe(1);
  });

  // A libSQL server may apply a transaction whose answer Bay gave up on (database.call_timeout):
  // the claim is released by then, and a retry may already hold the key.
  for (const [what, path, table] of [
    ["sandbox", "/v1/sandboxes", "sandboxes"],
    ["workspace", "/v1/workspaces", "workspaces"],
  ] as const) {
    test(`a ${what} create applied by the database after Bay gave up on it (released claim, then a retry) creates nothing`, async () => {
      const t = await bay();
      const db = t.bay.deps.stores.db;
      let late: Parameters<typeof db.batch> | null = null;
      const restore = wrap(
        db,
        "batch",
        (original) =>
          (async (...args: Parameters<typeof db.batch>) => {
            const creates = JSON.stringify(args[0]).includes("INSERT INTO " + table);
            if (!late && creates) {
              late = args; // held back: applied below, after the 503, as a late server would
              throw databaseUnavailable("timeout", new Error("no answer in time"));
            }
            return original(...args);
          }) as typeof db.batch,
      );
      const failed = await post(t, path, "{}", idem(`late-${what}`));
      expect(failed.status).toBe(503);
      expect(late).not.toBeNull();
      // Applied after the claim was released: created nothing (not a sandbox, not its workspace).
      await db.batch(...late!);
      expect(await countLive(t, "sandboxes")).toBe(0);
      expect(await countLive(t, "workspaces")).toBe(0);
      const retry = await post(t, path, "{}", idem(`late-${what}`));
      expect(retry.status).toBe(201);
      // Applied again while the retry's claim holds the key: still nothing of its own.
      await db.batch(...late!);
      restore();
      expect(await countLive(t, table)).toBe(1);
      expect(await countLive(t, "workspaces")).toBe(1);
      const replay = await post(t, path, "{}", idem(`late-${what}`));
      expect(((await replay.json()) as { id: string }).id).toBe(((await retry.json()) as { id: string }).id);
    });
  }

  test("a create whose claim was taken over meanwhile creates nothing and says so (409, retry answers the newer request)", async () => {
    const t = await bay();
    const store = t.bay.deps.stores.idempotency;
    const fp = fingerprint("POST", "/v1/sandboxes", "{}");
    const claimed = await store.claim("anon:alice", "taken-over", fp, Date.now() - 120_000, 86_400_000);
    if (claimed.kind !== "claimed") throw new Error("expected a claim");
    // The claim is stale: a retry takes the key over and creates its sandbox.
    const newer = await post(t, "/v1/sandboxes", "{}", idem("taken-over"));
    expect(newer.status).toBe(201);
    const err = await t.bay.deps.sandboxes.create("anon:alice", { profile: "python-default" }, claimed.claim).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "conflict", details: { reason: "idempotency_claim_lost" } });
    const ws = await t.bay.deps.workspaces.create("anon:alice", {}, claimed.claim).catch((e: unknown) => e);
    expect(ws).toMatchObject({ code: "conflict", details: { reason: "idempotency_claim_lost" } });
    expect(await countLive(t, "sandboxes")).toBe(1);
    expect(await countLive(t, "workspaces")).toBe(1);
  });

  test("the same for workspaces", async () => {
    const t = await bay();
    const store = t.bay.deps.stores.idempotency;
    const fp = fingerprint("POST", "/v1/workspaces", "{}");
    const claimed = await store.claim("anon:alice", "crash-ws", fp, Date.now() - 120_000, 86_400_000);
    if (claimed.kind !== "claimed") throw new Error("expected a claim");
    const created = await t.bay.deps.workspaces.create("anon:alice", {}, claimed.claim);
    const retry = await post(t, "/v1/workspaces", "{}", idem("crash-ws"));
    expect(retry.status).toBe(201);
    expect(((await retry.json()) as { id: string }).id).toBe(created.id);
    const rs = await t.bay.deps.stores.db.execute("SELECT COUNT(*) AS n FROM workspaces WHERE deleted_at IS NULL");
    expect(Number(rs.rows[0]!.n)).toBe(1);
  });

  test("a replayed error names the request being answered, not the first one", async () => {
    const t = await bay();
    const body = '{"profile":"no-such-profile"}';
    const first = await post(t, "/v1/sandboxes", body, idem("bad", { "x-request-id": "first-request" }));
    expect(first.status).toBe(400);
    expect(((await first.json()) as any).error.request_id).toBe("first-request");
    const replay = await post(t, "/v1/sandboxes", body, idem("bad", { "x-request-id": "second-request" }));
    expect(replay.status).toBe(400);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.headers.get("x-request-id")).toBe("second-request");
    expect(((await replay.json()) as any).error.request_id).toBe("second-request");
  });
});

test("a replay after a restart on the same database still returns the stored response", async () => {
  const first = await createTestBay();
  const dbPath = `${first.dir}/bay.db`;
  let stored: string;
  try {
    const res = await post(first, "/v1/sandboxes", "{}", idem("durable"));
    expect(res.status).toBe(201);
    stored = await res.text();
  } finally {
    await first.bay.close(); // keep the directory: the second Bay reopens the file
  }
  const second = await bay({ dbPath });
  const replay = await post(second, "/v1/sandboxes", "{}", idem("durable"));
  expect(replay.status).toBe(201);
  expect(await replay.text()).toBe(stored);
  expect(await countSandboxes(second)).toBe(1);
});

describe("fingerprint", () => {
  test("canonical JSON sorts keys at every depth and keeps array order", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
  });
  test("method, path and body all count; key order does not", () => {
    const base = fingerprint("POST", "/v1/sandboxes", '{"a":1,"b":2}');
    expect(fingerprint("POST", "/v1/sandboxes", '{"b":2, "a":1}')).toBe(base);
    expect(fingerprint("POST", "/v1/workspaces", '{"a":1,"b":2}')).not.toBe(base);
    expect(fingerprint("PUT", "/v1/sandboxes", '{"a":1,"b":2}')).not.toBe(base);
    expect(fingerprint("POST", "/v1/sandboxes", '{"a":1,"b":3}')).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });
  test("an empty body and {} are the same request", () => {
    expect(fingerprint("POST", "/v1/sandboxes", "")).toBe(fingerprint("POST", "/v1/sandboxes", "{}"));
  });
});

async function countLive(t: Awaited<ReturnType<typeof createTestBay>>, table: "sandboxes" | "workspaces"): Promise<number> {
  const rs = await t.bay.deps.stores.db.execute(`SELECT COUNT(*) AS n FROM ${table} WHERE deleted_at IS NULL`);
  return Number(rs.rows[0]!.n);
}
