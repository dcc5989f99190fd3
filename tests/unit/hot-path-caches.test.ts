/**
 * The caches that keep repeated work off the hot paths, and the limits of what
 * they trust: the /health engine probe (reused, shared, a failure kept only
 * briefly), stored API keys (a revoke by this process is immediate), and the
 * route cache (never across owners, never past a sandbox's TTL, forgotten on
 * request).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiKeyService } from "../../src/bay/domain/auth/api-keys.ts";
import { HealthService } from "../../src/bay/domain/health-service.ts";
import { ProfileRegistry } from "../../src/bay/domain/profiles.ts";
import { RouteCache } from "../../src/bay/domain/route-cache.ts";
import type { Driver } from "../../src/bay/drivers/driver.ts";
import { configSchema } from "../../src/bay/config.ts";
import { ApiKeyStore } from "../../src/bay/store/api-key-store.ts";
import { openDatabase, type Database } from "../../src/bay/store/database.ts";
import type { SandboxRecord } from "../../src/bay/store/sandbox-store.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function tempDb(): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), "bay-caches-"));
  const db = await openDatabase({ url: `file:${join(dir, "bay.db")}` });
  cleanups.push(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return db;
}

/** A driver that counts the engine round trips /health makes (and can be made to fail). */
function countingDriver() {
  const calls = { ping: 0, images: 0 };
  let up = true;
  const driver = {
    name: "counting",
    async ping() {
      calls.ping++;
      if (!up) throw new Error("engine down");
    },
    async imageExists() {
      calls.images++;
      return true;
    },
  } as unknown as Driver;
  return { driver, calls, setUp: (v: boolean) => void (up = v) };
}

const profiles = new ProfileRegistry(configSchema.parse({}).profiles);

describe("/health engine probe", () => {
  test("reused within the cache time, shared by concurrent checks; the database is asked every time", async () => {
    const db = await tempDb();
    const { driver, calls } = countingDriver();
    let now = 1_000_000;
    const health = new HealthService({ db, driver, profiles, version: "t", engineCacheMs: 5000, now: () => now });
    const reports = await Promise.all(Array.from({ length: 20 }, () => health.check()));
    expect(reports.every((r) => r.status === "healthy")).toBe(true);
    expect(calls).toEqual({ ping: 1, images: profiles.list().length });
    now += 4000;
    await health.check();
    expect(calls.ping).toBe(1);
    now += 1001;
    await health.check();
    expect(calls.ping).toBe(2);
    db.close();
    expect((await health.check()).database.ok).toBe(false);
  });

  test("a failed probe is kept at most a second, so a recovery shows soon", async () => {
    const db = await tempDb();
    const { driver, calls, setUp } = countingDriver();
    let now = 1_000_000;
    const health = new HealthService({ db, driver, profiles, version: "t", engineCacheMs: 60_000, now: () => now });
    setUp(false);
    expect((await health.check()).status).toBe("degraded");
    setUp(true);
    now += 500;
    expect((await health.check()).status).toBe("degraded");
    now += 600;
    expect((await health.check()).status).toBe("healthy");
    expect(calls.ping).toBe(2);
  });
});

describe("stored API keys", () => {
  test("trusted for the cache time without a read; a revoke through this service is immediate", async () => {
    const db = await tempDb();
    let reads = 0;
    class CountingStore extends ApiKeyStore {
      override findActiveByHash(hash: string) {
        reads++;
        return super.findActiveByHash(hash);
      }
    }
    let now = 1_000_000;
    const svc = new ApiKeyService(new CountingStore(db), [], () => now, 5000);
    const { key, record } = await svc.create("alice");
    for (let i = 0; i < 10; i++) expect(await svc.verify(key)).toBe("alice");
    expect(reads).toBe(1);
    now += 5001;
    expect(await svc.verify(key)).toBe("alice");
    expect(reads).toBe(2);
    await svc.revoke(record.id);
    expect(await svc.verify(key)).toBeNull();
    // Unknown keys are never remembered: each is looked up (a key created elsewhere works at once).
    expect(await svc.verify("bay_not-a-key-0123456789")).toBeNull();
    expect(await svc.verify("bay_not-a-key-0123456789")).toBeNull();
    expect(reads).toBe(5);
  });

  test("known(): the same trust without a promise; a revoke here while a read of the key is in flight is not undone by that read (review s57)", async () => {
    const db = await tempDb();
    let gate: Promise<void> | null = null;
    class SlowStore extends ApiKeyStore {
      override async findActiveByHash(hash: string) {
        const found = await super.findActiveByHash(hash);
        if (gate) await gate; // read before the revoke, answered after it
        return found;
      }
    }
    const now = 1_000_000;
    const svc = new ApiKeyService(new SlowStore(db), [], () => now, 30_000);
    const { key, record } = await svc.create("alice");
    expect(svc.known(key)).toBeUndefined(); // never read yet: only the store can tell
    expect(await svc.verify(key)).toBe("alice");
    expect(svc.known(key)).toBe("alice");
    await svc.revoke(record.id);
    expect(svc.known(key)).toBeUndefined();
    // A second key: its read starts, a revoke lands, then the read answers.
    const other = await svc.create("bob");
    let release!: () => void;
    gate = new Promise((r) => {
      release = r;
    });
    const inflight = svc.verify(other.key);
    await Bun.sleep(5);
    await svc.revoke(other.record.id);
    release();
    expect(await inflight).toBe("bob"); // read before the revoke: that answer stands
    expect(svc.known(other.key)).toBeUndefined();
    gate = null;
    expect(await svc.verify(other.key)).toBeNull();
  });

  test("a key read while its revocation is being written is not trusted once revoke() has returned (review s58)", async () => {
    const db = await tempDb();
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    class SlowRevoke extends ApiKeyStore {
      override async revoke(id: string, now: number) {
        await held; // the revocation's write lands after a read of the key
        return super.revoke(id, now);
      }
    }
    const svc = new ApiKeyService(new SlowRevoke(db), [], () => 1_000_000, 60_000);
    const { key, record } = await svc.create("alice");
    const revoking = svc.revoke(record.id);
    expect(await svc.verify(key)).toBe("alice"); // read before the write: that answer stands
    release();
    expect(await revoking).toBe(true);
    expect(svc.known(key)).toBeUndefined();
    expect(await svc.verify(key)).toBeNull();
  });
});

describe("route cache", () => {
  const ready = (over: Partial<SandboxRecord> = {}): SandboxRecord => ({
    id: "sandbox-1",
    owner: "alice",
    profileId: "python-default",
    workspaceId: "ws-1",
    createdAt: 0,
    expiresAt: null,
    idleExpiresAt: 50_000,
    currentSessionId: "sess-1",
    lastError: null,
    expiredAt: null,
    deletedAt: null,
    status: "ready",
    session: { id: "sess-1", status: "ready", endpoint: "http://127.0.0.1:1", containerId: "c", secret: "s", leaseExpiresAt: null },
    ...over,
  });

  test("only ready sandboxes, only for their owner, never past their TTL or the cache time", () => {
    let now = 1000;
    const cache = new RouteCache(30_000, 100, () => now);
    cache.remember(ready({ status: "idle", session: null, currentSessionId: null }));
    expect(cache.get("alice", "sandbox-1")).toBeNull();
    cache.remember(ready({ expiresAt: 5000 }));
    expect(cache.get("alice", "sandbox-1")?.id).toBe("sandbox-1");
    expect(cache.get("mallory", "sandbox-1")).toBeNull();
    now = 5000;
    expect(cache.get("alice", "sandbox-1")).toBeNull();
    cache.remember(ready());
    now += 30_001;
    expect(cache.get("alice", "sandbox-1")).toBeNull();
  });

  test("forget drops an entry; a deadline this process wrote moves the remembered one forward only", () => {
    const cache = new RouteCache(30_000, 100, () => 1000);
    cache.remember(ready());
    cache.noteIdleDeadline("sandbox-1", 90_000);
    expect(cache.get("alice", "sandbox-1")?.idleExpiresAt).toBe(90_000);
    cache.noteIdleDeadline("sandbox-1", 10_000);
    expect(cache.get("alice", "sandbox-1")?.idleExpiresAt).toBe(90_000);
    cache.forget("sandbox-1");
    expect(cache.get("alice", "sandbox-1")).toBeNull();
  });
});
