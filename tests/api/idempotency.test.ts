/**
 * Idempotency-Key on POST /v1/sandboxes and POST /v1/workspaces, over the real
 * app and a real libSQL file: key format, owner scope, byte-exact replay,
 * conflicts, and requests in flight, with a 50-request burst (what is stored,
 * the TTL, claims and the fingerprint are in idempotency-storage.test.ts).
 * Sandbox create is lazy, so none of this starts a container.
 */
import { describe, expect, test } from "bun:test";
import { pollUntil, testBays } from "../support/harness.ts";
import { countSandboxes, idem, post, wrap } from "./support/idempotency.ts";

const bay = testBays();

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
        const { error } = (await res.json()) as any;
        expect(error.code).toBe("validation_error");
        expect(error.details.issues[0].path).toBe("headers.idempotency-key"); // as headers.host is named
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
