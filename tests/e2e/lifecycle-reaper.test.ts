/**
 * Lifecycle rules on real Docker: idle reclaim stops compute and keeps data,
 * TTL expiry destroys compute and refuses capability calls while GET and DELETE
 * keep working, keepalive never starts compute, extend_ttl moves expires_at, and
 * the expired-workspace policy keeps or deletes the managed volume.
 */
import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { configSchema } from "../../src/bay/config.ts";
import { Reaper } from "../../src/bay/domain/reaper.ts";
import { silentLogger } from "../../src/bay/logger.ts";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";
import { containersOf, newSandbox, py, requireShipImages, volumeExists } from "./support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";

/** python-default with a 2 s idle timeout. */
const shortIdle = configSchema.parse({ profiles: [{ id: "python-default", image: SHIP_IMAGE, idle_timeout: 2 }] }).profiles;

// Real containers on a shared, noisy machine.
setDefaultTimeout(120_000);

let t: TestBay | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});
beforeAll(() => requireShipImages());

const status = async (bay: TestBay, id: string) => (await bay.json("GET", `/v1/sandboxes/${id}`)).body.status as string;

describe("idle reclaim", () => {
  test("a session idle past its profile's idle_timeout is stopped; the next call starts it again with the data intact", async () => {
    t = await createTestBay({ config: { profiles: shortIdle, lifecycle: { reaper_interval: 0.5 } } });
    const bay = t;
    const id = await newSandbox(bay);
    const w = await py(bay, id, "open('/workspace/keep.txt','w').write('still here')");
    expect(w.status).toBe(200);
    expect(w.body.success).toBe(true);
    expect(await status(bay, id)).toBe("ready");
    const first = await containersOf(bay, id);
    expect(first.length).toBe(1);

    bay.bay.reaper.start();
    await pollUntil(
      () => status(bay, id),
      (s) => s === "idle",
      20_000,
      "status idle",
    );
    const sb = (await bay.json("GET", `/v1/sandboxes/${id}`)).body;
    expect(sb.idle_expires_at ?? null).toBeNull();
    await pollUntil(
      () => containersOf(bay, id),
      (l) => l.length === 0,
      20_000,
      "container removed",
    );

    const r = await py(bay, id, "print(open('/workspace/keep.txt').read())");
    expect(r.status).toBe(200);
    expect(r.body.output).toContain("still here");
    const second = await containersOf(bay, id);
    expect(second.length).toBe(1);
    expect(second[0]!.id).not.toBe(first[0]!.id);
  });

  test("a call that outlasts idle_timeout keeps its session: the reaper waits for it", async () => {
    t = await createTestBay({ config: { profiles: shortIdle, lifecycle: { reaper_interval: 0.3 } } });
    const bay = t;
    const id = await newSandbox(bay);
    expect((await py(bay, id, "x = 1")).status).toBe(200);
    const first = await containersOf(bay, id);
    bay.bay.reaper.start();
    // 4 s of work against a 2 s idle timeout, with the reaper beating every 0.3 s.
    const long = await bay.json("POST", `/v1/sandboxes/${id}/python/exec`, {
      body: { code: "import time; time.sleep(4); x + 1", timeout: 20 },
    });
    expect(long.status).toBe(200);
    expect(long.body.output.trim()).toBe("2");
    expect((await containersOf(bay, id)).map((c) => c.id)).toEqual(first.map((c) => c.id));
    // Once the call is over, the idle timeout applies again.
    await pollUntil(
      () => status(bay, id),
      (s) => s === "idle",
      20_000,
      "status idle",
    );
  });

  test("keepalive extends only the idle deadline and never starts compute", async () => {
    // A long idle timeout: only the reapers below, each at an injected `now`, decide.
    const idle60 = configSchema.parse({ profiles: [{ id: "python-default", image: SHIP_IMAGE, idle_timeout: 60 }] }).profiles;
    t = await createTestBay({ config: { profiles: idle60 } });
    const bay = t;
    const reaperAt = (now: number) =>
      new Reaper(
        {
          stores: bay.bay.deps.stores,
          driver: bay.bay.driver,
          sessions: bay.bay.sessions,
          reconciler: bay.bay.reconciler,
          logger: silentLogger,
          now: () => now,
        },
        { intervalSeconds: 3600, expiredWorkspace: bay.config.lifecycle.expired_workspace },
      );
    const idleDeadline = async () => Date.parse((await bay.json("GET", `/v1/sandboxes/${id}`)).body.idle_expires_at as string);

    const id = await newSandbox(bay);
    const k = await bay.json("POST", `/v1/sandboxes/${id}/keepalive`);
    expect(k.status).toBe(200);
    expect(k.body.status).toBe("idle");
    expect(await containersOf(bay, id)).toHaveLength(0);

    expect((await py(bay, id, "1")).status).toBe(200);
    const first = (await containersOf(bay, id)).map((c) => c.id);
    expect(first).toHaveLength(1);
    // As if the session had idled 50 of its 60 s: the deadline is 10 s away.
    const old = Date.now() + 10_000;
    await bay.bay.deps.stores.db.execute({ sql: "UPDATE sandboxes SET idle_expires_at = ? WHERE id = ?", args: [old, id] });
    expect(await idleDeadline()).toBe(old);

    const after = (await bay.json("POST", `/v1/sandboxes/${id}/keepalive`)).body;
    expect(after.status).toBe("ready");
    const renewed = Date.parse(after.idle_expires_at);
    expect(renewed).toBeGreaterThan(old + 40_000); // now + 60 s

    // Past the old deadline, before the new one: a beat does not reclaim the kept-alive session.
    const between = await reaperAt(old + 1_000).runOnce();
    expect(between.idleReclaimed).toBe(0);
    expect(await status(bay, id)).toBe("ready");
    expect((await containersOf(bay, id)).map((c) => c.id)).toEqual(first);

    // Keepalive only moved the deadline: past the new one, the session is reclaimed as usual.
    const past = await reaperAt(renewed + 1_000).runOnce();
    expect(past.idleReclaimed).toBe(1);
    expect(await status(bay, id)).toBe("idle");
  });
});

describe("TTL expiry", () => {
  test("past its TTL a sandbox expires: compute gone, 409 on calls, GET shows it, DELETE works; workspace kept by default", async () => {
    t = await createTestBay({ config: { lifecycle: { reaper_interval: 0.5 } } });
    const bay = t;
    const created = await bay.json("POST", "/v1/sandboxes", { body: { ttl: 4 } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const wsId = created.body.workspace_id as string;
    expect((await py(bay, id, "open('/workspace/a.txt','w').write('x')")).status).toBe(200);
    expect(await containersOf(bay, id)).toHaveLength(1);

    bay.bay.reaper.start();
    await pollUntil(
      () => containersOf(bay, id),
      (l) => l.length === 0,
      15_000,
      "container removed",
    );
    const got = await bay.json("GET", `/v1/sandboxes/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.status).toBe("expired");

    const exec = await py(bay, id, "1");
    expect(exec.status).toBe(409);
    expect(exec.body.error.code).toBe("sandbox_expired");
    const ext = await bay.json("POST", `/v1/sandboxes/${id}/extend_ttl`, { body: { extend_by: 60 } });
    expect(ext.status).toBe(409);
    expect(ext.body.error.code).toBe("sandbox_expired");
    expect(await containersOf(bay, id)).toHaveLength(0);

    // lifecycle.expired_workspace defaults to keep.
    expect(await volumeExists(wsId)).toBe(true);
    expect((await bay.json("GET", `/v1/workspaces/${wsId}`)).status).toBe(200);

    expect((await bay.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect((await bay.call("GET", `/v1/sandboxes/${id}`)).status).toBe(404);
    expect(await volumeExists(wsId)).toBe(false);
  });

  test("with expired_workspace: delete the managed workspace goes with the compute", async () => {
    t = await createTestBay({ config: { lifecycle: { expired_workspace: "delete" } } });
    const created = await t.json("POST", "/v1/sandboxes", { body: { ttl: 60 } });
    const id = created.body.id as string;
    const wsId = created.body.workspace_id as string;
    expect((await py(t, id, "open('/workspace/a.txt','w').write('x')")).status).toBe(200);
    // Move the TTL into the past rather than race a short one against a cold start.
    await t.bay.deps.stores.sandboxes.setExpiresAt(id, Date.now() - 1000);
    const rep = await t.bay.reaper.runOnce();
    expect(rep.expired).toBe(1);
    expect(rep.workspacesDeleted).toBe(1);
    expect(await volumeExists(wsId)).toBe(false);
    expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("expired");
    expect((await t.call("GET", `/v1/workspaces/${wsId}`)).status).toBe(404);
    expect((await t.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
  });

  test("extend_ttl moves expires_at forward; a sandbox without TTL → 409 conflict and keeps none", async () => {
    t = await createTestBay();
    const created = await t.json("POST", "/v1/sandboxes", { body: { ttl: 60 } });
    const id = created.body.id as string;
    const before = Date.parse(created.body.expires_at);
    const ext = await t.json("POST", `/v1/sandboxes/${id}/extend_ttl`, { body: { extend_by: 120 } });
    expect(ext.status).toBe(200);
    expect(Date.parse(ext.body.expires_at) - before).toBe(120_000);
    expect(await containersOf(t, id)).toHaveLength(0);

    const forever = await newSandbox(t);
    const ext2 = await t.json("POST", `/v1/sandboxes/${forever}/extend_ttl`, { body: { extend_by: 120 } });
    expect(ext2.status).toBe(409);
    expect(ext2.body.error.code).toBe("conflict");
    expect((await t.json("GET", `/v1/sandboxes/${forever}`)).body.expires_at ?? null).toBeNull();
  });
});
