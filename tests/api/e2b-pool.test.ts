/**
 * The E2B API on the warm pool, fast (in-memory driver, fake Ships, real libSQL,
 * test clock): an E2B create, v2 and legacy, claims a warm member exactly as
 * Bay's own create does (ready, no new container, within the owner's quotas)
 * and the pool refills; a set_timeout that shortens a deadline holds at once
 * on the replica that routed the sandbox's calls. With the real SDKs and the
 * real Ship image: tests/e2e/e2b-warm-pool.test.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { PoolMember } from "../../src/bay/store/pool-store.ts";
import { pollUntil } from "../support/harness.ts";
import { containersOf, createMemoryBay, type MemoryBay, py, pythonProfile, sandbox } from "./support/memory-bay.ts";

let bays: MemoryBay[] = [];
afterEach(async () => {
  for (const b of bays) await b.close();
  for (const b of bays) b.engine.shutdown();
  bays = [];
});

async function pooled(size: number, limits: Record<string, number> = {}): Promise<MemoryBay> {
  const b = await createMemoryBay({
    config: { profiles: pythonProfile({ warm_pool: { size, max_age_seconds: 3600 } }), lifecycle: { warm_pool_concurrency: 2 }, limits },
  });
  bays.push(b);
  return b;
}

const members = (t: MemoryBay): Promise<PoolMember[]> => t.bay.deps.stores.pool.members();
const untilWarm = (t: MemoryBay, n: number) =>
  pollUntil(
    async () => {
      await t.bay.pool.maintain();
      return (await members(t)).filter((m) => m.state === "warm");
    },
    (w) => w.length >= n,
    10_000,
    `${n} warm members`,
  );

/** An E2B control-plane request as the SDKs send it (anonymous mode: the owner header names the owner). */
async function e2b(t: MemoryBay, method: string, path: string, body?: unknown, owner = "alice") {
  const res = await t.bay.app.request(`/e2b${path}`, {
    method,
    headers: { "x-owner": owner, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe("E2B create on the warm pool (in memory)", () => {
  test("v2 and legacy creates each claim a warm member (ready, its container, its timeout), and the pool refills", async () => {
    const t = await pooled(1);
    const [first] = await untilWarm(t, 1);
    const v2 = await e2b(t, "POST", "/v2/sandboxes", { templateID: "base", timeout: 300, metadata: { via: "v2" } });
    expect(v2.status).toBe(201);
    expect(v2.body.sandboxID).toBe(first!.id);
    const own = await sandbox(t, first!.id);
    expect(own.status).toBe("ready");
    expect(Date.parse(own.expires_at) - Date.parse(own.created_at)).toBe(300_000);
    // The member's container serves it: no other was started for the create.
    expect((await containersOf(t, first!.id)).map((c) => c.id)).toEqual([first!.containerId!]);
    const info = await e2b(t, "GET", `/sandboxes/${first!.id}`);
    expect(info.body).toMatchObject({ templateID: "base", metadata: { via: "v2" }, state: "running" });

    // The claim kicked a refill: a new member, never the one handed out.
    const [second] = await untilWarm(t, 1);
    expect(second!.id).not.toBe(first!.id);
    const legacy = await e2b(t, "POST", "/sandboxes", { templateID: "code-interpreter-v1" }, "bob");
    expect(legacy.status).toBe(201);
    expect(legacy.body.sandboxID).toBe(second!.id);
    expect((await sandbox(t, second!.id, "bob")).status).toBe("ready");
    expect((await py(t, second!.id, "21 * 2", "bob")).body).toMatchObject({ success: true });
    // Each claimed member belongs to its owner only.
    expect((await e2b(t, "GET", `/sandboxes/${second!.id}`)).status).toBe(404);
    const [third] = await untilWarm(t, 1);
    expect([first!.id, second!.id]).not.toContain(third!.id);
  });

  test("an E2B create over the owner's quota claims nothing: 429 in E2B's shape, the member stays warm", async () => {
    const t = await pooled(1, { max_sandboxes_per_owner: 1 });
    await e2b(t, "POST", "/v2/sandboxes", { templateID: "base" }); // lazy or a claim: the owner is now full
    const [m] = await untilWarm(t, 1);
    const over = await e2b(t, "POST", "/v2/sandboxes", { templateID: "base" });
    expect(over.status).toBe(429);
    expect(over.body.code).toBe(429);
    expect((await members(t)).map((x) => x.id)).toContain(m!.id);
    expect((await e2b(t, "POST", "/v2/sandboxes", { templateID: "base" }, "bob")).body.sandboxID).toBe(m!.id);
  });

  test("set_timeout shortening a deadline holds at once for /v1 calls this replica has routed", async () => {
    const t = await pooled(1);
    await untilWarm(t, 1);
    const id = (await e2b(t, "POST", "/v2/sandboxes", { templateID: "base", timeout: 3600 })).body.sandboxID as string;
    // Routed once: this process remembers the sandbox with its one-hour deadline.
    expect((await py(t, id, "1 + 1")).status).toBe(200);
    expect((await e2b(t, "POST", `/sandboxes/${id}/timeout`, { timeout: 5 })).status).toBe(204);
    t.clock.advance(10_000);
    const late = await py(t, id, "1 + 1");
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("sandbox_expired");
  });
});
