/**
 * The warm pool on real Docker and the real Ship image: a create claims a warm
 * member and answers `ready`, whose first exec runs at once on a kernel that
 * shows no trace of its warm-up; a member serves one owner only (fresh volume,
 * fresh secret each time); claims refill the pool; members are rotated by age;
 * they are in no listing and no owner's quota; an external-workspace create
 * takes the lazy path; an Idempotency-Key create replays a pool hit; a member
 * whose container died is never a dead end (retired by reconcile, or, claimed
 * before that, replaced by the first call); and a pool of size 0 starts nothing.
 */
import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { PoolMember } from "../../src/bay/store/pool-store.ts";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { docker, profiles, py, requireShipImages, SHIP_DATA_IMAGE, volumeExists } from "./support/e2e.ts";

setDefaultTimeout(240_000);

let t: TestBay | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});
beforeAll(() => requireShipImages());

/** A Bay whose python-default profile keeps a pool of `size` (members older than `maxAge` s are rotated). */
async function pooledBay(size: number, extra: { maxAge?: number; limits?: Record<string, number> } = {}): Promise<TestBay> {
  const bay = await createTestBay({
    config: {
      profiles: profiles({ id: "python-default", image: SHIP_IMAGE, warm_pool: { size, max_age_seconds: extra.maxAge ?? 3600 } }),
      lifecycle: { warm_pool_concurrency: 2 },
      ...(extra.limits ? { limits: extra.limits } : {}),
    },
  });
  bay.bay.pool.start();
  return bay;
}

const members = (bay: TestBay): Promise<PoolMember[]> => bay.bay.deps.stores.pool.members();
const warm = async (bay: TestBay) => (await members(bay)).filter((m) => m.state === "warm");

/** Waits until the pool holds `n` warm members (starts are slow on a loaded machine). */
const untilWarm = (bay: TestBay, n: number) =>
  pollUntil(
    () => warm(bay),
    (w) => w.length >= n,
    180_000,
    `${n} warm members`,
  );

/** The session row (secret included) behind a sandbox, straight from the database. */
async function sessionOf(bay: TestBay, sandboxId: string) {
  const sb = await bay.bay.deps.stores.sandboxes.get(sandboxId);
  return sb?.currentSessionId ? bay.bay.deps.stores.sessions.get(sb.currentSessionId) : null;
}

describe("warm pool", () => {
  test("a create claims a warm member: ready at once, first exec on a warmed kernel without a trace of the warm-up", async () => {
    t = await pooledBay(1);
    const [member] = await untilWarm(t, 1);
    const created = await t.json("POST", "/v1/sandboxes", { body: { ttl: 600 } });
    expect(created.status).toBe(201);
    expect(created.body.id).toBe(member!.id);
    expect(created.body.status).toBe("ready");
    expect(created.body.idle_expires_at).not.toBeNull();
    expect(Date.parse(created.body.expires_at) - Date.parse(created.body.created_at)).toBe(600_000);

    // The owner's first cell is the kernel's first: count 1, `_` untouched, empty history.
    const r = await py(t, created.body.id, "x = 40 + 2\nprint(repr(_), len(In), x)\nx");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, execution_count: 1 });
    expect(r.body.output).toContain("'' 2 42");
    // Its container carries the pool's labels, true before and after the claim; the owner lives in the database.
    const [c] = await docker.listContainers({ filters: { label: [`bay.sandbox_id=${created.body.id}`] } });
    expect(c?.Labels["bay.pool"]).toBe("python-default");
    expect(c?.Labels["bay.session_id"]).toBe(member!.sessionId!);
    expect(c?.Labels["bay.owner"]).toBe("");
    // Deleting it removes its container and volume like any sandbox's.
    expect((await t.call("DELETE", `/v1/sandboxes/${created.body.id}`)).status).toBe(204);
    await pollUntil(
      () => docker.listContainers({ all: true, filters: { label: [`bay.sandbox_id=${created.body.id}`] } }),
      (l) => l.length === 0,
      30_000,
      "container removed",
    );
    expect(await volumeExists(member!.workspaceId)).toBe(false);
  });

  test("a member serves one owner only: the next claim has a fresh volume and a fresh secret, and refill follows", async () => {
    t = await pooledBay(2);
    await untilWarm(t, 2);
    const a = await t.json("POST", "/v1/sandboxes", { owner: "alice", body: {} });
    expect(a.body.status).toBe("ready");
    const wrote = await t.json("POST", `/v1/sandboxes/${a.body.id}/shell/exec`, {
      owner: "alice",
      body: { command: "echo secret-of-alice > note.txt && ls" },
    });
    expect(wrote.body.output).toContain("note.txt");
    const aSession = (await sessionOf(t, a.body.id))!;
    expect((await t.call("DELETE", `/v1/sandboxes/${a.body.id}`, { owner: "alice" })).status).toBe(204);

    const b = await t.json("POST", "/v1/sandboxes", { owner: "bob", body: {} });
    expect(b.body.status).toBe("ready");
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.body.workspace_id).not.toBe(a.body.workspace_id);
    const listing = await t.json("POST", `/v1/sandboxes/${b.body.id}/shell/exec`, {
      owner: "bob",
      body: { command: "ls -A /workspace; cat /workspace/note.txt 2>&1 || true" },
    });
    expect(listing.body.output).not.toContain("secret-of-alice");
    const bSession = (await sessionOf(t, b.body.id))!;
    expect(bSession.id).not.toBe(aSession.id);
    expect(bSession.secret).not.toBe(aSession.secret);
    // Bob's Ship does not answer to Alice's old secret.
    const denied = await fetch(`${bSession.endpoint}/meta`, { headers: { authorization: `Bearer ${aSession.secret}` } });
    expect(denied.status).toBe(401);
    // Alice cannot see Bob's sandbox.
    expect((await t.json("GET", `/v1/sandboxes/${b.body.id}`, { owner: "alice" })).status).toBe(404);

    // Two claims, two replacements: the pool is back to its size with members neither owner had.
    const refilled = await untilWarm(t, 2);
    for (const m of refilled) expect([a.body.id, b.body.id]).not.toContain(m.id);
  });

  test("members are in no listing and count against no owner's quota (but a full quota is not bypassed by a claim)", async () => {
    t = await pooledBay(2, { limits: { max_sandboxes_per_owner: 1 } });
    await untilWarm(t, 2);
    expect((await t.json("GET", "/v1/sandboxes")).body.items).toEqual([]);
    expect((await t.json("GET", "/v1/workspaces")).body.items).toEqual([]);
    const first = await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(first.status).toBe(201);
    expect(first.body.status).toBe("ready");
    const second = await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(second.status).toBe(429);
    expect(second.body.error.details.reason).toBe("sandboxes");
    // The refused claim took nothing: one member left unclaimed (plus refills).
    expect((await t.json("GET", "/v1/sandboxes")).body.items.map((s: { id: string }) => s.id)).toEqual([first.body.id]);
    const metrics = await (await t.call("GET", "/metrics")).text();
    expect(metrics).toMatch(/bay_sandbox_starts_total\{profile="python-default",kind="pool",outcome="ok"\} 1/);
    expect(metrics).toMatch(/bay_sandboxes\{profile="python-default",status="ready"\} 1\b/);
  });

  test("an external workspace takes the lazy path; an Idempotency-Key create replays its pool hit", async () => {
    t = await pooledBay(1);
    const [member] = await untilWarm(t, 1);
    const ws = await t.json("POST", "/v1/workspaces", { body: {} });
    const onWs = await t.json("POST", "/v1/sandboxes", { body: { workspace_id: ws.body.id } });
    expect(onWs.status).toBe(201);
    expect(onWs.body.status).toBe("idle");
    expect(onWs.body.id).not.toBe(member!.id);
    expect((await members(t)).map((m) => m.id)).toContain(member!.id);

    const headers = { "idempotency-key": "pool-hit-1" };
    const one = await t.json("POST", "/v1/sandboxes", { body: {}, headers });
    const two = await t.json("POST", "/v1/sandboxes", { body: {}, headers });
    expect(one.body.id).toBe(member!.id);
    expect(one.body.status).toBe("ready");
    expect(two.status).toBe(201);
    expect(two.res.headers.get("idempotent-replayed")).toBe("true");
    expect(two.body.id).toBe(one.body.id);
  });

  test("members older than max_age_seconds are retired and replaced; their containers and volumes go", async () => {
    t = await pooledBay(1, { maxAge: 10 });
    const [first] = await untilWarm(t, 1);
    const replaced = await pollUntil(
      async () => {
        await t!.bay.pool.maintain();
        return warm(t!);
      },
      (w) => w.length === 1 && w[0]!.id !== first!.id,
      180_000,
      "a replacement member",
    );
    expect(replaced[0]!.id).not.toBe(first!.id);
    expect(await docker.listContainers({ all: true, filters: { label: [`bay.sandbox_id=${first!.id}`] } })).toHaveLength(0);
    await pollUntil(
      () => volumeExists(first!.workspaceId),
      (v) => v === false,
      30_000,
      "old volume removed",
    );
    // An aged member is never handed out, even before it is retired.
    const sb = await t.bay.deps.stores.sandboxes.get(first!.id);
    expect(sb?.deletedAt).not.toBeNull();
  });

  test("an image rebuilt under the profile's name: a member made from the old one is retired, never handed out, and replaced from the new one (review s95 M1)", async () => {
    await requireShipImages([SHIP_IMAGE, SHIP_DATA_IMAGE]);
    // The profile's image is a name of this test's own; pointing it at another image stands for a rebuild.
    const [repo, tag] = [SHIP_IMAGE.split(":")[0]!, `pool-rebuild-${crypto.randomUUID().slice(0, 8)}`];
    const name = `${repo}:${tag}`;
    const idOf = async (image: string) => (await docker.getImage(image).inspect()).Id;
    await docker.getImage(SHIP_IMAGE).tag({ repo, tag });
    try {
      t = await createTestBay({
        config: {
          profiles: profiles({ id: "python-default", image: name, warm_pool: { size: 1, max_age_seconds: 3600 } }),
          lifecycle: { warm_pool_concurrency: 2 },
        },
      });
      t.bay.pool.start();
      const [old] = await untilWarm(t, 1);
      expect((await docker.getContainer(old!.containerId!).inspect()).Image).toBe(await idOf(SHIP_IMAGE));
      await docker.getImage(SHIP_DATA_IMAGE).tag({ repo, tag });
      const [fresh] = await pollUntil(
        async () => {
          await t!.bay.pool.maintain();
          return warm(t!);
        },
        (w) => w.length === 1 && w[0]!.id !== old!.id,
        180_000,
        "a member made from the rebuilt image",
      );
      expect((await t.bay.deps.stores.sandboxes.get(old!.id))?.deletedAt).not.toBeNull();
      expect(await docker.listContainers({ all: true, filters: { label: [`bay.sandbox_id=${old!.id}`] } })).toHaveLength(0);
      const created = await t.json("POST", "/v1/sandboxes", { body: {} });
      expect(created.body).toMatchObject({ id: fresh!.id, status: "ready" });
      expect((await docker.getContainer(fresh!.containerId!).inspect()).Image).toBe(await idOf(SHIP_DATA_IMAGE));
      expect((await py(t, created.body.id as string, "print(6*7)")).body.output).toContain("42");
    } finally {
      await t?.close();
      t = null;
      // Only this test's name goes: the images keep their own.
      await docker
        .getImage(name)
        .remove({ noprune: true })
        .catch(() => {});
    }
  });

  test("a member whose container dies is retired after reconcile, and a claim never gets it", async () => {
    t = await pooledBay(1);
    const [member] = await untilWarm(t, 1);
    await docker.getContainer(member!.containerId!).kill();
    await t.bay.reaper.runOnce(); // reconcile ends the dead session; the pool pass retires the member
    expect((await members(t)).map((m) => m.id)).not.toContain(member!.id);
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(created.body.id).not.toBe(member!.id);
  });

  test("a member whose container died before the claim: the create answers, and the first exec runs on a new session", async () => {
    t = await pooledBay(1);
    const [member] = await untilWarm(t, 1);
    await docker.getContainer(member!.containerId!).kill();
    // No reconcile has run (this Bay's reaper is not started): the database still calls the member warm.
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(created.status).toBe(201);
    expect(created.body.id).toBe(member!.id);
    // The call finds the runtime gone, ends that session and runs on a new one, in the same request.
    const r = await py(t, created.body.id, "6 * 7");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, execution_count: 1 });
    expect(r.body.output.trim()).toBe("42");
    const now = (await sessionOf(t, created.body.id))!;
    expect(now.id).not.toBe(member!.sessionId);
    expect((await t.bay.deps.stores.sessions.get(member!.sessionId!))?.status).toBe("failed");
    // The dead member's container is removed; the owner's sandbox keeps the member's workspace.
    await pollUntil(
      () => docker.listContainers({ all: true, filters: { label: [`bay.session_id=${member!.sessionId}`] } }),
      (l) => l.length === 0,
      30_000,
      "dead member container removed",
    );
    expect(created.body.workspace_id).toBe(member!.workspaceId);
  });

  test("size 0 (the default) starts nothing: creates stay lazy", async () => {
    t = await createTestBay();
    t.bay.pool.start();
    expect(t.bay.pool.enabled).toBe(false);
    await t.bay.pool.maintain();
    expect(await members(t)).toEqual([]);
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(created.body.status).toBe("idle");
    expect(await docker.listContainers({ all: true, filters: { label: [`bay.instance_id=${t.bay.instanceId}`] } })).toHaveLength(0);
  });
});
