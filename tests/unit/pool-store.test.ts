/**
 * The warm pool's rows on a real libSQL file: members are made only while the
 * pool has room (also with two connections inserting at once), a claim hands
 * each member to exactly one claimer even with two connections (as two Bay
 * processes) racing, moves the workspace with it, respects the owner's quotas
 * and records an Idempotency-Key; retiring and claiming never both win; and
 * members are in no owner's listing or quota.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newId } from "../../src/bay/domain/ids.ts";
import { POOL_MEMBER_STATES, POOL_OWNER, poolMayFollow } from "../../src/bay/domain/lifecycle.ts";
import { openDatabase, type Database } from "../../src/bay/store/database.ts";
import { createStores, type Stores } from "../../src/bay/store/index.ts";
import type { PoolClaim } from "../../src/bay/store/pool-store.ts";

let dir: string;
const opened: Database[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bay-pool-store-"));
});
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function stores(): Promise<Stores> {
  const db = await openDatabase({ url: `file:${join(dir, "bay.db")}` });
  opened.push(db);
  return createStores(db);
}

const NOW = 1_800_000_000_000;

/** Makes a member of `profile` and marks its session ready (as a finished start would). */
async function warmMember(
  s: Stores,
  profile = "python-default",
  now = NOW,
  size = 100,
  fingerprint = "fp",
): Promise<{ id: string; ws: string; sess: string } | null> {
  const m = {
    sandboxId: newId("sandbox", now),
    workspaceId: newId("ws", now),
    sessionId: newId("sess", now),
    profileId: profile,
    fingerprint,
    secret: crypto.randomUUID() + crypto.randomUUID(),
    sizeLimitMb: 1024,
    leaseOwner: "replica-test",
    leaseExpiresAt: now + 10_000,
    now,
  };
  if (!(await s.pool.insertMember(m, size, 1000, 2 * size))) return null;
  await s.db.execute(s.sessions.markReadyStatement(m.sessionId, "http://127.0.0.1:1", now));
  return { id: m.sandboxId, ws: m.workspaceId, sess: m.sessionId };
}

const claimOf = (owner: string, over: Partial<PoolClaim> = {}): PoolClaim => ({
  owner,
  profileId: "python-default",
  token: crypto.randomUUID(),
  now: NOW + 1000,
  oldest: NOW - 3_600_000,
  fingerprint: "fp",
  expiresAt: null,
  idleExpiresAt: NOW + 1_800_000,
  maxSandboxes: 50,
  maxWorkspaces: 100,
  ...over,
});

describe("warm-pool lifecycle table", () => {
  test("claimed and retired are final: a member is never reused", () => {
    expect(poolMayFollow("warm", "claimed")).toBe(true);
    expect(poolMayFollow("warming", "claimed")).toBe(false);
    expect(poolMayFollow("stale", "claimed")).toBe(false);
    for (const s of POOL_MEMBER_STATES) {
      expect(poolMayFollow("claimed", s)).toBe(false);
      expect(poolMayFollow("retired", s)).toBe(false);
    }
  });
});

describe("making members", () => {
  test("only while the profile has fewer live members than the size, counted in the database", async () => {
    const s = await stores();
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await warmMember(s, "python-default", NOW + i, 3));
    expect(made.filter(Boolean)).toHaveLength(3);
    // Another profile has its own size.
    expect(await warmMember(s, "python-data", NOW, 1)).not.toBeNull();
    const members = await s.pool.members();
    expect(members.map((m) => m.state)).toEqual(["warm", "warm", "warm", "warm"]);
    // A member that failed has no session any more: stale.
    const first = made[0]!;
    await s.sessions.end(first.sess, "failed", NOW + 10, "test");
    await s.sandboxes.releaseCurrentSession(first.id, first.sess);
    expect((await s.pool.members()).find((m) => m.id === first.id)?.state).toBe("stale");
  });

  test("two connections filling the same pool at once never overshoot its size", async () => {
    const a = await stores();
    const b = await stores();
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => warmMember(i % 2 ? a : b, "python-default", NOW + i, 4)));
    expect(results.filter(Boolean)).toHaveLength(4);
    expect(await a.pool.members()).toHaveLength(4);
  });

  test("each configuration fills its own pool, all of them together at most twice the size (review s97 M2, s98 L1)", async () => {
    const s = await stores();
    expect(await warmMember(s, "python-default", NOW, 1, "one-way")).not.toBeNull();
    expect(await warmMember(s, "python-default", NOW, 1, "one-way")).toBeNull();
    expect(await warmMember(s, "python-default", NOW, 1, "another-way")).not.toBeNull();
    expect(await warmMember(s, "python-default", NOW, 1, "a-third-way")).toBeNull();
    expect(await warmMember(s, "python-data", NOW, 1, "a-third-way")).not.toBeNull();
  });

  test("never past Bay's live-session cap", async () => {
    const s = await stores();
    const m = {
      sandboxId: newId("sandbox", NOW),
      workspaceId: newId("ws", NOW),
      sessionId: newId("sess", NOW),
      profileId: "python-default",
      fingerprint: "fp",
      secret: "s".repeat(40),
      sizeLimitMb: 1024,
      leaseOwner: "r",
      leaseExpiresAt: NOW + 10_000,
      now: NOW,
    };
    expect(await warmMember(s)).not.toBeNull();
    expect(await s.pool.insertMember(m, 10, 1, 20)).toBe(false);
    // Nothing half-made: no workspace, sandbox or session of the refused member.
    const rs = await s.db.execute({
      sql: "SELECT (SELECT COUNT(*) FROM workspaces) AS w, (SELECT COUNT(*) FROM sandboxes) AS s, (SELECT COUNT(*) FROM sessions) AS x",
      args: [],
    });
    expect([Number(rs.rows[0]!.w), Number(rs.rows[0]!.s), Number(rs.rows[0]!.x)]).toEqual([1, 1, 1]);
  });
});

describe("claiming", () => {
  test("each member goes to exactly one of many claimers on two connections", async () => {
    const a = await stores();
    const b = await stores();
    const members = [];
    for (let i = 0; i < 6; i++) members.push((await warmMember(a, "python-default", NOW + i))!);
    const owners = Array.from({ length: 20 }, (_, i) => `owner-${i}`);
    const got = await Promise.all(owners.map((o, i) => (i % 2 ? a : b).pool.claim(claimOf(o))));
    const won = got.filter((x): x is string => x !== null);
    expect(won).toHaveLength(6);
    expect(new Set(won).size).toBe(6);
    expect(new Set(won)).toEqual(new Set(members.map((m) => m.id)));
    // Each claimed row names the one owner that got it, and so does its workspace.
    for (const [i, id] of got.entries()) {
      if (!id) continue;
      const sb = await a.sandboxes.get(id, NOW + 2000);
      expect(sb?.owner).toBe(owners[i]);
      expect(sb?.status).toBe("ready");
      const ws = await a.workspaces.get(sb!.workspaceId);
      expect(ws?.owner).toBe(owners[i]);
    }
    expect(await a.pool.members()).toHaveLength(0);
    // No claim token is left behind.
    const rs = await a.db.execute("SELECT COUNT(*) AS n FROM sandboxes WHERE claim_token IS NOT NULL");
    expect(Number(rs.rows[0]!.n)).toBe(0);
  });

  test("the claimed sandbox starts its life at the claim: created_at, TTL and idle deadline", async () => {
    const s = await stores();
    await warmMember(s, "python-default", NOW);
    const id = (await s.pool.claim(claimOf("alice", { now: NOW + 5000, expiresAt: NOW + 65_000, idleExpiresAt: NOW + 35_000 })))!;
    const sb = (await s.sandboxes.findLive("alice", id, NOW + 6000))!;
    expect([sb.createdAt, sb.expiresAt, sb.idleExpiresAt]).toEqual([NOW + 5000, NOW + 65_000, NOW + 35_000]);
  });

  test("oldest first, never one past its age, never one still warming, never another profile's", async () => {
    const s = await stores();
    const old = (await warmMember(s, "python-default", NOW - 7_200_000))!;
    const older = (await warmMember(s, "python-default", NOW - 100))!;
    const newer = (await warmMember(s, "python-default", NOW))!;
    await warmMember(s, "python-data", NOW - 50);
    // A warming member (its session still starting) is not handed out.
    await s.pool.insertMember(
      {
        sandboxId: newId("sandbox", NOW - 200),
        workspaceId: newId("ws", NOW - 200),
        sessionId: newId("sess", NOW - 200),
        profileId: "python-default",
        fingerprint: "fp",
        secret: "s".repeat(40),
        sizeLimitMb: 1,
        leaseOwner: "r",
        leaseExpiresAt: NOW,
        now: NOW - 200,
      },
      10,
      100,
      20,
    );
    expect(await s.pool.claim(claimOf("a"))).toBe(older.id);
    expect(await s.pool.claim(claimOf("b"))).toBe(newer.id);
    expect(await s.pool.claim(claimOf("c"))).toBeNull();
    expect((await s.pool.members()).map((m) => m.id)).toContain(old.id);
  });

  test("only a member made from what the claim names (its profile's container now): another is never handed out (review s95 M1)", async () => {
    const s = await stores();
    const before = (await warmMember(s, "python-default", NOW - 100, 100, "made-the-old-way"))!;
    const now = (await warmMember(s, "python-default", NOW, 100, "fp"))!;
    expect(await s.pool.claim(claimOf("a"))).toBe(now.id);
    expect(await s.pool.claim(claimOf("b"))).toBeNull();
    expect((await s.pool.members()).map((m) => [m.id, m.fingerprint])).toEqual([[before.id, "made-the-old-way"]]);
    expect(await s.pool.claim(claimOf("c", { fingerprint: "made-the-old-way" }))).toBe(before.id);
  });

  test("within the owner's quotas, in the claim itself", async () => {
    const s = await stores();
    await warmMember(s, "python-default", NOW);
    await warmMember(s, "python-default", NOW + 1);
    expect(await s.pool.claim(claimOf("alice", { maxSandboxes: 1 }))).not.toBeNull();
    expect(await s.pool.claim(claimOf("alice", { maxSandboxes: 1 }))).toBeNull();
    expect(await s.pool.claim(claimOf("alice", { maxWorkspaces: 1 }))).toBeNull();
    expect(await s.pool.claim(claimOf("bob", { maxSandboxes: 1 }))).not.toBeNull();
  });

  test("under an Idempotency-Key, the claimed sandbox is recorded on the key in the same transaction", async () => {
    const s = await stores();
    await warmMember(s);
    const r = await s.idempotency.claim("alice", "k1", "fp", NOW, 60_000);
    if (r.kind !== "claimed") throw new Error("expected a claim");
    const id = await s.pool.claim(claimOf("alice"), (token) => s.idempotency.attachClaimedStatement(r.claim, token));
    const again = await s.idempotency.claim("alice", "k1", "fp", NOW + 120_000, 60_000);
    // The stale in-flight record is taken over and keeps the resource it created.
    expect(again.kind === "claimed" && again.claim.resourceId).toBe(id!);
    // A miss records nothing.
    const r2 = await s.idempotency.claim("alice", "k2", "fp", NOW, 60_000);
    if (r2.kind !== "claimed") throw new Error("expected a claim");
    expect(await s.pool.claim(claimOf("alice"), (token) => s.idempotency.attachClaimedStatement(r2.claim, token))).toBeNull();
    const rs = await s.db.execute({ sql: "SELECT resource_id FROM idempotency_keys WHERE key = 'k2'", args: [] });
    expect(rs.rows[0]!.resource_id).toBeNull();
  });
});

describe("retiring", () => {
  test("retiring and claiming the same member: exactly one wins", async () => {
    const a = await stores();
    const b = await stores();
    for (let round = 0; round < 10; round++) {
      const m = (await warmMember(a, "python-default", NOW + round))!;
      const [retired, claimed] = await Promise.all([
        b.sandboxes.tombstone(m.id, NOW + round, { poolMemberOnly: true }),
        a.pool.claim(claimOf(`o-${round}`)),
      ]);
      expect(Number(retired) + Number(claimed !== null)).toBe(1);
    }
  });

  test("a claimed sandbox is no member any more: retiring it does nothing", async () => {
    const s = await stores();
    const m = (await warmMember(s))!;
    await s.pool.claim(claimOf("alice"));
    expect(await s.sandboxes.tombstone(m.id, NOW + 2000, { poolMemberOnly: true })).toBe(false);
    expect((await s.sandboxes.findLive("alice", m.id, NOW + 2000))?.status).toBe("ready");
  });

  test("a retired member's session ends and its workspace is tombstoned with it", async () => {
    const s = await stores();
    const m = (await warmMember(s))!;
    expect(await s.sandboxes.tombstone(m.id, NOW + 1, { poolMemberOnly: true })).toBe(true);
    expect((await s.sessions.get(m.sess))?.status).toBe("stopped");
    expect((await s.workspaces.get(m.ws))?.deletedAt).toBe(NOW + 1);
    expect(await s.pool.claim(claimOf("alice"))).toBeNull();
  });
});

describe("members are nobody's", () => {
  test("in no owner's listing or quota count", async () => {
    const s = await stores();
    await warmMember(s);
    await warmMember(s, "python-default", NOW + 1);
    const owner = "alice";
    expect((await s.sandboxes.list({ owner, limit: 50 }, NOW)).items).toHaveLength(0);
    expect(await s.sandboxes.countLive(owner)).toBe(0);
    expect(await s.workspaces.countLive(owner)).toBe(0);
    expect((await s.workspaces.list({ owner, limit: 50 })).items).toHaveLength(0);
    // The members are there, under the owner no identity can have.
    expect(await s.sandboxes.countLive(POOL_OWNER)).toBe(2);
  });
});
