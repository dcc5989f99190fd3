/**
 * Sandbox lifecycle through the API, without starting a container: lazy
 * create, get, delete (tombstone + managed workspace), keepalive, stop,
 * extend_ttl, listing with cursors and filters, expiry, and the system routes.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { openApiDocument, zHealth, zProfileList, zSandbox, zSandboxList } from "../../src/bay/api/generated/index.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { closeWithoutContainers, expectErrorBody, instanceContainers } from "./support/fixtures.ts";
import type { BayConfig } from "../../src/bay/config.ts";
import { SHIP_IMAGE } from "../support/images.ts";

let t: TestBay;
beforeEach(async () => {
  t = await createTestBay();
});
afterEach(() => closeWithoutContainers(t));

async function create(body: Record<string, unknown> = {}, owner = "alice") {
  const r = await t.json("POST", "/v1/sandboxes", { body, owner });
  expect(r.status).toBe(201);
  return zSandbox.parse(r.body);
}

async function workspaceRow(id: string) {
  const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT * FROM workspaces WHERE id = ?", args: [id] });
  return rs.rows[0] ?? null;
}

const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));

describe("create", () => {
  test("is lazy: idle, no compute, ids prefixed, a managed workspace row exists", async () => {
    const sb = await create();
    expect(sb.status).toBe("idle");
    expect(sb.id).toMatch(/^sandbox-[0-9a-z]+$/);
    expect(sb.workspace_id).toMatch(/^ws-[0-9a-z]+$/);
    expect(sb.profile).toBe("python-default");
    expect(sb.capabilities.sort()).toEqual(["filesystem", "python", "shell"]);
    expect(sb.idle_expires_at).toBeNull();
    expect(sb.last_error).toBeNull();
    const ws = await workspaceRow(sb.workspace_id);
    expect(ws).not.toBeNull();
    expect(Number(ws!.managed)).toBe(1);
    expect(ws!.owner).toBe("anon:alice"); // anonymous owners have their own namespace
    expect(ws!.deleted_at).toBeNull();
    const wsApi = await t.json("GET", `/v1/workspaces/${sb.workspace_id}`);
    expect(wsApi.status).toBe(200);
    expect(wsApi.body).toMatchObject({ id: sb.workspace_id, managed: true, sandbox_id: sb.id });
  });

  test("without a body at all uses the defaults", async () => {
    const r = await t.json("POST", "/v1/sandboxes");
    expect(r.status).toBe(201);
    expect(r.body.profile).toBe("python-default");
    expect(r.body.expires_at).toBeNull();
  });

  test.each([[{}], [{ ttl: null }], [{ ttl: 0 }]])("ttl %j never expires", async (body) => {
    const sb = await create(body);
    expect(sb.expires_at).toBeNull();
  });

  test("ttl 60 expires 60 s after creation", async () => {
    const sb = await create({ ttl: 60 });
    expect(ms(sb.expires_at)! - ms(sb.created_at)!).toBe(60_000);
    expect(Math.abs(ms(sb.created_at)! - Date.now())).toBeLessThan(60_000);
  });

  test("with profile python-data", async () => {
    const sb = await create({ profile: "python-data" });
    expect(sb.profile).toBe("python-data");
  });

  test("on an external workspace uses it and does not create another", async () => {
    const ws = await t.json("POST", "/v1/workspaces", { body: {} });
    expect(ws.status).toBe(201);
    const sb = await create({ workspace_id: ws.body.id });
    expect(sb.workspace_id).toBe(ws.body.id);
    const rs = await t.bay.deps.stores.db.execute("SELECT COUNT(*) AS n FROM workspaces");
    expect(Number(rs.rows[0]!.n)).toBe(1);
  });
});

describe("get and delete", () => {
  test("get returns the sandbox as created", async () => {
    const sb = await create({ ttl: 600 });
    const r = await t.json("GET", `/v1/sandboxes/${sb.id}`);
    expect(r.status).toBe(200);
    expect(zSandbox.parse(r.body)).toEqual(sb);
  });

  test("unknown id → 404 not_found", async () => {
    const r = await t.json("GET", "/v1/sandboxes/sandbox-00000000000000000000000000");
    expect(r.status).toBe(404);
    expectErrorBody(r.res, r.body, "not_found");
  });

  test("delete an idle sandbox → 204, then 404; its managed workspace is tombstoned", async () => {
    const sb = await create();
    const del = await t.call("DELETE", `/v1/sandboxes/${sb.id}`);
    expect(del.status).toBe(204);
    expect(await del.text()).toBe("");
    for (const [method, path] of [
      ["GET", `/v1/sandboxes/${sb.id}`],
      ["DELETE", `/v1/sandboxes/${sb.id}`],
      ["POST", `/v1/sandboxes/${sb.id}/keepalive`],
      ["GET", `/v1/workspaces/${sb.workspace_id}`],
    ] as const) {
      const r = await t.json(method, path);
      expect({ path, method, status: r.status }).toEqual({ path, method, status: 404 });
      expectErrorBody(r.res, r.body, "not_found");
    }
    const ws = await workspaceRow(sb.workspace_id);
    expect(ws!.deleted_at).not.toBeNull();
    const row = await t.bay.deps.stores.db.execute({ sql: "SELECT deleted_at FROM sandboxes WHERE id = ?", args: [sb.id] });
    expect(row.rows[0]!.deleted_at).not.toBeNull();
    const list = await t.json("GET", "/v1/sandboxes");
    expect(list.body.items).toEqual([]);
  });

  test("deleting a sandbox keeps its external workspace", async () => {
    const ws = await t.json("POST", "/v1/workspaces", { body: {} });
    const sb = await create({ workspace_id: ws.body.id });
    expect((await t.call("DELETE", `/v1/sandboxes/${sb.id}`)).status).toBe(204);
    const after = await t.json("GET", `/v1/workspaces/${ws.body.id}`);
    expect(after.status).toBe(200);
    expect(after.body.sandbox_id).toBeNull();
    // …and it can host a new sandbox.
    expect((await create({ workspace_id: ws.body.id })).workspace_id).toBe(ws.body.id);
  });
});

describe("keepalive, stop, extend_ttl", () => {
  test("keepalive on an idle sandbox does not start compute", async () => {
    const sb = await create();
    const r = await t.json("POST", `/v1/sandboxes/${sb.id}/keepalive`);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("idle");
    expect(r.body.idle_expires_at).toBeNull();
    expect(await instanceContainers(t)).toEqual([]);
    const sessions = await t.bay.deps.stores.db.execute("SELECT COUNT(*) AS n FROM sessions");
    expect(Number(sessions.rows[0]!.n)).toBe(0);
  });

  test("stop on an idle sandbox is idempotent", async () => {
    const sb = await create();
    for (let i = 0; i < 2; i++) {
      const r = await t.json("POST", `/v1/sandboxes/${sb.id}/stop`);
      expect(r.status).toBe(200);
      expect(zSandbox.parse(r.body)).toEqual(sb);
    }
  });

  test("extend_ttl moves expires_at later by extend_by seconds", async () => {
    const sb = await create({ ttl: 60 });
    const r = await t.json("POST", `/v1/sandboxes/${sb.id}/extend_ttl`, { body: { extend_by: 30 } });
    expect(r.status).toBe(200);
    expect(ms(r.body.expires_at)! - ms(sb.expires_at)!).toBe(30_000);
    const again = await t.json("GET", `/v1/sandboxes/${sb.id}`);
    expect(again.body.expires_at).toBe(r.body.expires_at);
  });

  test("extend_ttl on a sandbox that never expires → 409 conflict (spec: extendSandboxTtl), and it still never expires", async () => {
    const sb = await create();
    const r = await t.json("POST", `/v1/sandboxes/${sb.id}/extend_ttl`, { body: { extend_by: 30 } });
    expect(r.status).toBe(409);
    expectErrorBody(r.res, r.body, "conflict");
    const after = await t.json("GET", `/v1/sandboxes/${sb.id}`);
    expect(after.body.expires_at).toBeNull();
  });
});

describe("list", () => {
  test("cursor pagination: 7 sandboxes by 3 → 3, 3, 1, newest first, no duplicates", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await create()).id);
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `limit=3&cursor=${encodeURIComponent(cursor)}` : "limit=3";
      const r = await t.json("GET", `/v1/sandboxes?${q}`);
      expect(r.status).toBe(200);
      const page = zSandboxList.parse(r.body);
      sizes.push(page.items.length);
      seen.push(...page.items.map((s) => s.id));
      cursor = page.next_cursor;
    } while (cursor && sizes.length < 10);
    expect(sizes).toEqual([3, 3, 1]);
    expect(new Set(seen).size).toBe(7);
    expect([...seen].sort()).toEqual([...ids].sort());
    // Newest first. Ids order by creation time to the millisecond; within one millisecond
    // their order is random (ids.ts is not monotonic), so compare times, and ids for ties.
    const created = new Map<string, number>();
    for (const id of ids) created.set(id, ms((await t.json("GET", `/v1/sandboxes/${id}`)).body.created_at)!);
    for (let i = 1; i < seen.length; i++) expect(created.get(seen[i - 1]!)!).toBeGreaterThanOrEqual(created.get(seen[i]!)!);
    expect(seen).toEqual([...seen].sort().reverse());
  });

  test("a full last page has no next_cursor", async () => {
    for (let i = 0; i < 3; i++) await create();
    const r = await t.json("GET", "/v1/sandboxes?limit=3");
    expect(r.body.items).toHaveLength(3);
    expect(r.body.next_cursor).toBeNull();
  });

  test("limit defaults to 50", async () => {
    // 51 live sandboxes need a quota above the default 50.
    await t.close();
    t = await createTestBay({ config: { limits: { max_sandboxes_per_owner: 60 } } });
    await Promise.all(Array.from({ length: 51 }, () => create()));
    const r = await t.json("GET", "/v1/sandboxes");
    expect(r.status).toBe(200);
    expect(r.body.items).toHaveLength(50);
    expect(r.body.next_cursor).not.toBeNull();
    const rest = await t.json("GET", `/v1/sandboxes?cursor=${encodeURIComponent(r.body.next_cursor)}`);
    expect(rest.body.items).toHaveLength(1);
  });

  test("status filter", async () => {
    const live = await create({ ttl: 3600 });
    const old = await create({ ttl: 3600 });
    await t.bay.deps.stores.sandboxes.setExpiresAt(old.id, Date.now() - 1000);
    const expired = await t.json("GET", "/v1/sandboxes?status=expired");
    expect(expired.body.items.map((s: { id: string }) => s.id)).toEqual([old.id]);
    const idle = await t.json("GET", "/v1/sandboxes?status=idle");
    expect(idle.body.items.map((s: { id: string }) => s.id)).toEqual([live.id]);
    const ready = await t.json("GET", "/v1/sandboxes?status=ready");
    expect(ready.body).toEqual({ items: [], next_cursor: null });
  });

  test("status filter paginates over matching rows only", async () => {
    const expiredIds: string[] = [];
    for (let i = 0; i < 4; i++) {
      const sb = await create({ ttl: 3600 });
      await create(); // an idle one between each
      await t.bay.deps.stores.sandboxes.setExpiresAt(sb.id, Date.now() - 1000);
      expiredIds.push(sb.id);
    }
    const p1 = await t.json("GET", "/v1/sandboxes?status=expired&limit=3");
    expect(p1.body.items).toHaveLength(3);
    const p2 = await t.json("GET", `/v1/sandboxes?status=expired&limit=3&cursor=${p1.body.next_cursor}`);
    const got = [...p1.body.items, ...p2.body.items].map((s: { id: string }) => s.id);
    expect([...got].sort()).toEqual([...expiredIds].sort());
    expect(got).toEqual([...got].sort().reverse());
    expect(p2.body.next_cursor).toBeNull();
  });
});

describe("expiry", () => {
  test("ttl 1: after ~1.1 s the sandbox is expired; capability calls and keepalive → 409; delete still 204", async () => {
    const sb = await create({ ttl: 1 });
    await Bun.sleep(1100);
    const r = await t.json("GET", `/v1/sandboxes/${sb.id}`);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("expired");
    expect(r.body.idle_expires_at).toBeNull();
    for (const [method, path, body] of [
      ["POST", `/v1/sandboxes/${sb.id}/python/exec`, { code: "1" }],
      ["POST", `/v1/sandboxes/${sb.id}/shell/exec`, { command: "true" }],
      ["GET", `/v1/sandboxes/${sb.id}/filesystem/files?path=a.txt`, undefined],
      ["POST", `/v1/sandboxes/${sb.id}/keepalive`, undefined],
      ["POST", `/v1/sandboxes/${sb.id}/extend_ttl`, { extend_by: 10 }],
    ] as const) {
      const c = await t.json(method, path, { body });
      expect({ path, status: c.status }).toEqual({ path, status: 409 });
      expectErrorBody(c.res, c.body, "sandbox_expired");
    }
    expect(await instanceContainers(t)).toEqual([]);
    expect((await t.call("DELETE", `/v1/sandboxes/${sb.id}`)).status).toBe(204);
    expect((await t.json("GET", `/v1/sandboxes/${sb.id}`)).status).toBe(404);
  });
});

describe("system routes", () => {
  test("GET /v1/profiles lists the default profiles with their network and runtime", async () => {
    const r = await t.json("GET", "/v1/profiles");
    expect(r.status).toBe(200);
    const list = zProfileList.parse(r.body);
    expect(list.items.map((p) => p.id).sort()).toEqual(["python-data", "python-default", "python-gvisor"]);
    const data = list.items.find((p) => p.id === "python-data")!;
    expect(data.cpus).toBe(2);
    expect(data.memory_mb).toBe(2048);
    expect(list.items.map((p) => [p.id, p.network, p.runtime])).toEqual([
      ["python-default", "egress", null],
      ["python-data", "egress", null],
      ["python-gvisor", "egress", "runsc"],
    ]);
    // This engine has runsc registered (scripts/prereqs.sh); the default runtime is always there.
    expect(list.items.every((p) => p.runtime_available === true)).toBe(true);
    // Profile env may hold secrets: it is never part of the DTO.
    expect(JSON.stringify(r.body)).not.toContain('"env"');
  });

  test("GET /openapi.json equals the generated document", async () => {
    const r = await t.json("GET", "/openapi.json", { headers: {} });
    expect(r.status).toBe(200);
    expect(r.res.headers.get("content-type")).toStartWith("application/json");
    expect(r.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    // Built once, then served as the same text.
    const again = await t.json("GET", "/openapi.json", { headers: {} });
    expect(again.body).toEqual(r.body);
  });

  test("GET /health needs no auth and reports the database ok", async () => {
    const strict = await createTestBay({ config: { auth: { mode: "api_key" } } });
    try {
      const r = await strict.json("GET", "/health");
      expect(r.status).toBe(200);
      const h = zHealth.parse(r.body);
      expect(h.database).toEqual({ ok: true });
      expect(h.driver.name).toBe("docker");
      expect(h.driver.ok).toBe(true);
      expect(typeof h.version).toBe("string");
      expect(h.runtimes.map((r) => r.profile)).toEqual(h.images.map((i) => i.profile));
      const ok = h.database.ok && h.driver.ok && h.images.every((i) => i.present) && h.runtimes.every((r) => r.available);
      expect(h.status).toBe(ok ? "healthy" : "degraded");
    } finally {
      await strict.close();
    }
  });

  test("a profile whose runtime the engine lacks: runtime_available false, /health degraded naming only the profile", async () => {
    const lacking = await createTestBay({
      config: {
        profiles: [
          { id: "plain", image: SHIP_IMAGE },
          { id: "kata", image: SHIP_IMAGE, runtime: "bay-test-no-such-runtime" },
          { id: "own-net", image: SHIP_IMAGE, network: { docker_network: "bay-test-operator-net" } },
        ] as unknown as BayConfig["profiles"],
      },
    });
    try {
      const profiles = zProfileList.parse((await lacking.json("GET", "/v1/profiles")).body).items;
      expect(profiles.map((p) => [p.id, p.runtime, p.runtime_available, p.network])).toEqual([
        ["plain", null, true, "egress"],
        ["kata", "bay-test-no-such-runtime", false, "egress"],
        // The operator's network name stays inside.
        ["own-net", null, true, "docker_network"],
      ]);
      expect(JSON.stringify(profiles)).not.toContain("bay-test-operator-net");
      const h = zHealth.parse((await lacking.json("GET", "/health")).body);
      expect(h.runtimes).toEqual([
        { profile: "plain", available: true },
        { profile: "kata", available: false },
        { profile: "own-net", available: true },
      ]);
      expect(h.status).toBe("degraded");
      expect(JSON.stringify(h)).not.toContain("bay-test-no-such-runtime");
    } finally {
      await lacking.close();
    }
  });

  test("GET /health reports the database down as degraded, still 200", async () => {
    t.bay.deps.stores.db.close();
    const r = await t.json("GET", "/health");
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("degraded");
    expect(r.body.database.ok).toBe(false);
  });
});
