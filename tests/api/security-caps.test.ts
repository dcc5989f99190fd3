/**
 * The blast-radius caps of issue 11, each tried by a tenant that wants more than
 * its share: live sessions across all owners (503 + Retry-After), sandboxes one
 * owner starts at once (429 + Retry-After), live workspaces per owner, managed and
 * external together (429), and the size_limit_mb a client may ask for (400).
 *
 * Sessions held by other Bay replicas are made the way a replica makes them (a
 * leased `starting` session claimed on its sandbox), so the caps are tried
 * without waiting on containers; a call the caps let through is shown to reach
 * the engine by a profile whose image does not exist (its own error, not a cap's).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { defaultProfiles, type ProfileConfig } from "../../src/bay/config.ts";
import { newId } from "../../src/bay/domain/ids.ts";
import { mintSecret } from "../../src/bay/domain/session-manager.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { SHIP_TAG } from "../support/images.ts";

const GHOST = { id: "ghost", image: "bay-security-caps-no-such-image:none" };
let t: TestBay | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

async function bay(limits: Record<string, number>): Promise<TestBay> {
  t = await createTestBay({ config: { limits, profiles: [...defaultProfiles(SHIP_TAG), GHOST] as ProfileConfig[] } });
  return t;
}

async function sandbox(b: TestBay, owner: string, profile = "ghost"): Promise<string> {
  const r = await b.json("POST", "/v1/sandboxes", { owner, body: { profile } });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

/** What another replica does when it starts a sandbox: a leased `starting` session, claimed on the sandbox. */
async function startingElsewhere(b: TestBay, sandboxId: string): Promise<string> {
  const { sessions, sandboxes } = b.bay.deps.stores;
  const id = newId("sess", Date.now());
  const now = Date.now();
  const inserted = await sessions.insertStarting({
    id,
    sandboxId,
    secret: mintSecret(),
    leaseOwner: "another-replica",
    leaseExpiresAt: now + 10 * 60_000,
    now,
  });
  expect(inserted).toBe(true);
  expect(await sandboxes.claimCurrentSession(sandboxId, id, now)).toBe(true);
  return id;
}

const exec = (b: TestBay, owner: string, id: string) =>
  b.json("POST", `/v1/sandboxes/${id}/shell/exec`, { owner, body: { command: "true" } });

describe("max_live_sessions", () => {
  test("full across owners: 503 capacity with Retry-After, nothing started; a freed slot lets the next start reach the engine", async () => {
    const b = await bay({ max_live_sessions: 2 });
    const held = [await startingElsewhere(b, await sandbox(b, "bob")), await startingElsewhere(b, await sandbox(b, "carol"))];
    const mine = await sandbox(b, "alice");
    const r = await exec(b, "alice", mine);
    expect(r.status).toBe(503);
    expect(r.body.error).toMatchObject({ code: "session_not_ready", details: { reason: "capacity", limit: 2 } });
    expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await b.bay.driver.listContainers({ instance_id: b.bay.instanceId })).toHaveLength(0);
    expect((await b.bay.deps.stores.sandboxes.get(mine))!.currentSessionId).toBeNull();

    await b.bay.deps.stores.sessions.end(held[0]!, "stopped", Date.now(), null);
    const next = await exec(b, "alice", mine);
    expect(next.body.error?.details?.reason).not.toBe("capacity");
    expect(next.body.error?.details?.image).toBe(GHOST.image);
  });
});

describe("max_concurrent_starts_per_owner", () => {
  test("an owner at the cap gets 429 concurrent_starts with Retry-After; another owner's start is not held back", async () => {
    const b = await bay({ max_concurrent_starts_per_owner: 1 });
    await startingElsewhere(b, await sandbox(b, "bob"));
    const second = await sandbox(b, "bob");
    const r = await exec(b, "bob", second);
    expect(r.status).toBe(429);
    expect(r.body.error).toMatchObject({ code: "quota_exceeded", details: { reason: "concurrent_starts", limit: 1 } });
    expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);

    const alice = await exec(b, "alice", await sandbox(b, "alice"));
    expect(alice.body.error?.details?.reason).not.toBe("concurrent_starts");
    expect(alice.body.error?.details?.image).toBe(GHOST.image);
  });
});

describe("max_workspaces_per_owner", () => {
  test("managed and external count together; the next of either kind is 429, also in a burst; other owners unaffected", async () => {
    const b = await bay({ max_workspaces_per_owner: 3 });
    await sandbox(b, "alice");
    const burst = await Promise.all(Array.from({ length: 8 }, () => b.json("POST", "/v1/workspaces", { owner: "alice" })));
    expect(burst.filter((r) => r.status === 201)).toHaveLength(2);
    for (const r of burst.filter((r) => r.status !== 201)) {
      expect(r.status).toBe(429);
      expect(r.body.error).toMatchObject({ code: "quota_exceeded", details: { reason: "workspaces", limit: 3 } });
    }
    const managed = await b.json("POST", "/v1/sandboxes", { owner: "alice", body: {} });
    expect(managed.status).toBe(429);
    expect(managed.body.error.details.reason).toBe("workspaces");
    const live = await b.bay.deps.stores.db.execute({
      sql: "SELECT COUNT(*) AS n FROM workspaces WHERE owner = ? AND deleted_at IS NULL",
      args: ["anon:alice"],
    });
    expect(Number(live.rows[0]!.n)).toBe(3);
    expect((await b.json("POST", "/v1/workspaces", { owner: "bob" })).status).toBe(201);
  });
});

describe("max_workspace_size_limit_mb", () => {
  test("a size_limit_mb above the cap is 400 before anything is created; the cap itself is accepted", async () => {
    const b = await bay({ max_workspace_size_limit_mb: 100, workspace_size_limit_mb: 50 });
    for (const size_limit_mb of [101, 1024 * 1024, 2 ** 40]) {
      const r = await b.json("POST", "/v1/workspaces", { owner: "alice", body: { size_limit_mb } });
      expect([size_limit_mb, r.status]).toEqual([size_limit_mb, 400]);
      expect(r.body.error.code).toBe("validation_error");
    }
    const list = await b.json("GET", "/v1/workspaces", { owner: "alice" });
    expect(list.body.items).toHaveLength(0);
    expect((await b.json("POST", "/v1/workspaces", { owner: "alice", body: { size_limit_mb: 100 } })).status).toBe(201);
  });
});
