/**
 * Idempotency-Key on POST /v1/sandboxes and POST /v1/workspaces, over the real
 * app and a real libSQL file: key format, owner scope, fingerprint, byte-exact
 * replay, conflicts, TTL, what is (not) stored, and a 50-request burst.
 * Sandbox create is lazy, so none of this starts a container.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { canonicalJson, fingerprint } from "../../src/bay/api/middleware/idempotency.ts";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";

const open: TestBay[] = [];
async function bay(opts: Parameters<typeof createTestBay>[0] = {}): Promise<TestBay> {
  const t = await createTestBay(opts);
  open.push(t);
  return t;
}
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

const idem = (key: string, extra: Record<string, string> = {}) => ({ "idempotency-key": key, ...extra });

async function countSandboxes(t: TestBay, owner?: string): Promise<number> {
  const rs = await t.bay.deps.stores.db.execute({
    sql: "SELECT COUNT(*) AS n FROM sandboxes WHERE (? IS NULL OR owner = ?)",
    args: [owner ?? null, owner ?? null],
  });
  return Number(rs.rows[0]!.n);
}

/** Sends a raw JSON text body, so key order and whitespace are exactly what the test says. */
function post(t: TestBay, path: string, body: string, headers: Record<string, string>, owner = "alice") {
  return t.bay.app.request(path, { method: "POST", body, headers: { "content-type": "application/json", "x-owner": owner, ...headers } });
}

/** Replaces a manager method until the returned restore function is called. */
function wrap<T extends object, K extends keyof T>(obj: T, key: K, make: (original: T[K]) => T[K]): () => void {
  const original = obj[key];
  obj[key] = make(typeof original === "function" ? (original.bind(obj) as T[K]) : original);
  return () => {
    obj[key] = original;
  };
}

describe("Idempotency-Key format", () => {
  const bad: Array<[string, string]> = [
    ["a space and !", "bad key!"],
    ["129 characters", "k".repeat(129)],
    ["empty", ""],
    ["a dot", "a.b"],
    ["non-ASCII", "clé"],
  ];
  for (const path of ["/v1/sandboxes", "/v1/workspaces"]) {
    for (const [name, key] of bad) {
      test(`${path}: ${name} → 400 validation_error`, async () => {
        const t = await bay();
        const res = await post(t, path, "{}", idem(key));
        expect(res.status).toBe(400);
        expect(((await res.json()) as any).error.code).toBe("validation_error");
        expect(await countSandboxes(t)).toBe(0);
      });
    }
  }

  test("128 characters of [A-Za-z0-9_-] is accepted", async () => {
    const t = await bay();
    const key = `${"aZ9_-".repeat(25)}abc`;
    expect(key.length).toBe(128);
    expect((await post(t, "/v1/sandboxes", "{}", idem(key))).status).toBe(201);
  });
});

describe("replay and conflict", () => {
  test("a replay returns the stored status and body byte for byte, and creates nothing", async () => {
    const t = await bay();
    const first = await post(t, "/v1/sandboxes", '{"profile":"python-default","ttl":600}', idem("k1", { "x-request-id": "first" }));
    const firstText = await first.text();
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    await Bun.sleep(5); // a re-run would give other timestamps
    const again = await post(t, "/v1/sandboxes", '{"profile":"python-default","ttl":600}', idem("k1", { "x-request-id": "second" }));
    expect(again.status).toBe(201);
    expect(await again.text()).toBe(firstText);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("content-type")).toBe(first.headers.get("content-type"));
    expect(again.headers.get("x-request-id")).toBe("second");
    expect(await countSandboxes(t)).toBe(1);
  });

  test("key order and whitespace do not change the fingerprint", async () => {
    const t = await bay();
    const a = await post(t, "/v1/sandboxes", '{"profile":"python-default","ttl":600}', idem("k"));
    const b = await post(t, "/v1/sandboxes", '{ "ttl" : 600,\n  "profile": "python-default" }', idem("k"));
    expect(b.status).toBe(201);
    expect(await b.text()).toBe(await a.text());
    expect(await countSandboxes(t)).toBe(1);
  });

  test("the same key with another body is 409 conflict", async () => {
    const t = await bay();
    expect((await post(t, "/v1/sandboxes", '{"ttl":600}', idem("k"))).status).toBe(201);
    const other = await post(t, "/v1/sandboxes", '{"ttl":601}', idem("k"));
    expect(other.status).toBe(409);
    const body = (await other.json()) as any;
    expect(body.error.code).toBe("conflict");
    expect(body.error.details.idempotency_key).toBe("k");
    expect(await countSandboxes(t)).toBe(1);
  });

  test("the same key on another path is 409 conflict (the path is part of the fingerprint)", async () => {
    const t = await bay();
    expect((await post(t, "/v1/sandboxes", "{}", idem("k"))).status).toBe(201);
    expect((await post(t, "/v1/workspaces", "{}", idem("k"))).status).toBe(409);
  });

  test("keys are scoped per owner: same key, two owners → two sandboxes", async () => {
    const t = await bay();
    const a = await post(t, "/v1/sandboxes", "{}", idem("shared"), "alice");
    const b = await post(t, "/v1/sandboxes", "{}", idem("shared"), "bob");
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    const [ja, jb] = [(await a.json()) as any, (await b.json()) as any];
    expect(ja.id).not.toBe(jb.id);
    expect(await countSandboxes(t, "anon:alice")).toBe(1);
    expect(await countSandboxes(t, "anon:bob")).toBe(1);
    // And each owner's replay is its own.
    expect(((await (await post(t, "/v1/sandboxes", "{}", idem("shared"), "bob")).json()) as any).id).toBe(jb.id);
  });

  test("POST /v1/workspaces is idempotent too", async () => {
    const t = await bay();
    const a = await post(t, "/v1/workspaces", '{"size_limit_mb":64}', idem("ws"));
    expect(a.status).toBe(201);
    const b = await post(t, "/v1/workspaces", '{"size_limit_mb":64}', idem("ws"));
    expect(await b.text()).toBe(await a.text());
    expect((await post(t, "/v1/workspaces", '{"size_limit_mb":65}', idem("ws"))).status).toBe(409);
    const rs = await t.bay.deps.stores.db.execute("SELECT COUNT(*) AS n FROM workspaces");
    expect(Number(rs.rows[0]!.n)).toBe(1);
  });

  test("without the header every request creates", async () => {
    const t = await bay();
    await post(t, "/v1/sandboxes", "{}", {});
    await post(t, "/v1/sandboxes", "{}", {});
    expect(await countSandboxes(t)).toBe(2);
  });
});

describe("in flight", () => {
  test("a duplicate while the first is still running is 409 conflict with Retry-After; the first then completes", async () => {
    const t = await bay();
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const restore = wrap(t.bay.deps.sandboxes, "create", (original) => async (...args) => {
      entered();
      await gate;
      return original(...args);
    });
    const first = post(t, "/v1/sandboxes", "{}", idem("slow"));
    await inside;
    const dup = await post(t, "/v1/sandboxes", "{}", idem("slow"));
    expect(dup.status).toBe(409);
    expect(dup.headers.get("retry-after")).toBe("1");
    const dupBody = (await dup.json()) as any;
    expect(dupBody.error.code).toBe("conflict");
    expect(dupBody.error.message).toContain("in progress");
    // Another body under the held key is a conflict as well.
    expect((await post(t, "/v1/sandboxes", '{"ttl":5}', idem("slow"))).status).toBe(409);
    release();
    const done = await first;
    expect(done.status).toBe(201);
    restore();
    const replay = await post(t, "/v1/sandboxes", "{}", idem("slow"));
    expect(await replay.text()).toBe(await done.text());
    expect(await countSandboxes(t)).toBe(1);
  });

  test("a TTL shorter than the request does not let a duplicate in", async () => {
    const t = await bay({ config: { idempotency: { ttl_seconds: 1 } } });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const restore = wrap(t.bay.deps.sandboxes, "create", (original) => async (...args) => {
      if (calls++ === 0) await gate;
      return original(...args);
    });
    const first = post(t, "/v1/sandboxes", "{}", idem("slow"));
    await Bun.sleep(1200); // past the 1 s TTL while the first is still running
    expect((await post(t, "/v1/sandboxes", "{}", idem("slow"))).status).toBe(409);
    release();
    expect((await first).status).toBe(201);
    restore();
    expect(await countSandboxes(t)).toBe(1);
  });

  test("50 concurrent creates under one key → exactly one sandbox", async () => {
    const t = await bay();
    const responses = await Promise.all(Array.from({ length: 50 }, () => post(t, "/v1/sandboxes", '{"ttl":3600}', idem("burst"))));
    const bodies = await Promise.all(responses.map(async (r) => ({ status: r.status, body: (await r.json()) as any })));
    const created = bodies.filter((b) => b.status === 201);
    const conflicts = bodies.filter((b) => b.status === 409);
    expect(created.length + conflicts.length).toBe(50);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((b) => b.body.id)).size).toBe(1);
    for (const c of conflicts) expect(c.body.error.code).toBe("conflict");
    expect(await countSandboxes(t)).toBe(1);
  });

  test("50 concurrent creates with a slow first → one 201, 49 conflicts, one sandbox", async () => {
    const t = await bay();
    // The first create is held until the 49 duplicates have all been answered.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered = 0;
    const restore = wrap(t.bay.deps.sandboxes, "create", (original) => async (...args) => {
      entered++;
      await gate;
      return original(...args);
    });
    let answered = 0;
    const pending = Array.from({ length: 50 }, () =>
      Promise.resolve(post(t, "/v1/sandboxes", "{}", idem("burst"))).then((r) => {
        answered++;
        return r;
      }),
    );
    try {
      await pollUntil(
        () => answered,
        (n) => n >= 49,
        10_000,
        "49 duplicates answered while the first is held",
      );
      expect(answered).toBe(49);
    } finally {
      release();
    }
    const responses = await Promise.all(pending);
    restore();
    expect(entered).toBe(1);
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201).length).toBe(1);
    expect(statuses.filter((s) => s === 409).length).toBe(49);
    expect(await countSandboxes(t)).toBe(1);
  });
});

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
