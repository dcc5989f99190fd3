/**
 * The libSQL store: migrations from empty (file and :memory:), idempotent
 * re-runs, two processes racing on a new file, the computed sandbox status,
 * compare-and-set of the session slot, and one live sandbox per workspace.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate, openDatabase, type Database } from "../../src/bay/store/database.ts";
import { createStores, type Stores } from "../../src/bay/store/index.ts";
import { MIGRATIONS } from "../../src/bay/store/migrations.ts";

let dir: string;
const opened: Database[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bay-store-"));
});
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function open(url: string): Promise<Database> {
  const db = await openDatabase({ url });
  opened.push(db);
  return db;
}

async function tables(db: Database): Promise<string[]> {
  const rs = await db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
  return rs.rows.map((r) => String(r.name));
}

async function versions(db: Database): Promise<number[]> {
  const rs = await db.execute("SELECT version FROM schema_migrations ORDER BY version");
  return rs.rows.map((r) => Number(r.version));
}

const EXPECTED_TABLES = [
  "api_keys",
  "call_covers",
  "e2b_sandboxes",
  "e2b_secret",
  "idempotency_keys",
  "installation",
  "metric_samples",
  "pool_configs",
  "sandboxes",
  "schema_migrations",
  "sessions",
  "terminal_tickets",
  "workspaces",
];
const ALL_VERSIONS = MIGRATIONS.map((m) => m.version);
const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));

describe("migrations", () => {
  test.each([["file"], ["memory"]])("from an empty %s database create every table", async (kind) => {
    const db = await open(kind === "file" ? `file:${join(dir, "nested", "bay.db")}` : ":memory:");
    expect(await tables(db)).toEqual(EXPECTED_TABLES);
    expect(await versions(db)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  test("re-running applies nothing and keeps the data", async () => {
    const url = `file:${join(dir, "bay.db")}`;
    const db = await open(url);
    await db.execute(
      "INSERT INTO workspaces (id, owner, managed, volume_name, size_limit_mb, created_at) VALUES ('ws-a', 'o', 0, 'ws-a', 1, 1)",
    );
    expect(await migrate(db, MIGRATIONS)).toEqual([]);
    const again = await open(url);
    expect(await versions(again)).toEqual(MIGRATIONS.map((m) => m.version));
    const rs = await again.execute("SELECT COUNT(*) AS n FROM workspaces");
    expect(Number(rs.rows[0]!.n)).toBe(1);
  });

  test("a new migration is applied once, after the existing ones", async () => {
    const db = await open(":memory:");
    const extra = [...MIGRATIONS, { version: LATEST + 1, name: "extra", statements: ["CREATE TABLE extra_t (x INTEGER)"] }];
    expect(await migrate(db, extra)).toEqual([LATEST + 1]);
    expect(await migrate(db, extra)).toEqual([]);
    expect(await tables(db)).toContain("extra_t");
  });

  test("a database migrated up to the warm pool (version 6) gains the E2B tables and keeps its rows", async () => {
    const url = `file:${join(dir, "bay.db")}`;
    const upToPool = MIGRATIONS.filter((m) => m.version <= 6);
    const old = await openDatabase({ url, migrations: upToPool });
    opened.push(old);
    expect(await versions(old)).toEqual(upToPool.map((m) => m.version));
    expect(await tables(old)).not.toContain("e2b_sandboxes");
    await old.execute(
      "INSERT INTO workspaces (id, owner, managed, volume_name, size_limit_mb, created_at) VALUES ('ws-a', 'o', 0, 'ws-a', 1, 1)",
    );
    expect(await migrate(old, MIGRATIONS)).toEqual(MIGRATIONS.filter((m) => m.version > 6).map((m) => m.version));
    expect(await tables(old)).toEqual(EXPECTED_TABLES);
    const rs = await old.execute("SELECT COUNT(*) AS n FROM workspaces");
    expect(Number(rs.rows[0]!.n)).toBe(1);
    const secret = await old.execute("SELECT secret FROM e2b_secret");
    expect(String(secret.rows[0]!.secret)).toMatch(/^[0-9a-f]{64}$/);
  });

  test("version 11 as it first was gains pool_configs from 12; a development database that had the table in 11 migrates too (review s98 M1)", async () => {
    for (const withTable of [false, true]) {
      const upTo11 = MIGRATIONS.filter((m) => m.version <= 11);
      const old = await openDatabase({ url: ":memory:", migrations: upTo11 });
      opened.push(old);
      if (withTable) await old.execute("CREATE TABLE pool_configs (replica_id TEXT, profile_id TEXT, fingerprint TEXT, seen_at INTEGER)");
      expect(await migrate(old, MIGRATIONS)).toEqual(MIGRATIONS.filter((m) => m.version > 11).map((m) => m.version));
      expect(await tables(old)).toEqual(EXPECTED_TABLES);
    }
  });

  test("a failing migration applies nothing of itself", async () => {
    const db = await open(":memory:");
    const broken = [...MIGRATIONS, { version: LATEST + 1, name: "broken", statements: ["CREATE TABLE half (x)", "NOT SQL AT ALL"] }];
    await expect(migrate(db, broken)).rejects.toThrow();
    expect(await tables(db)).not.toContain("half");
    expect(await versions(db)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  test("two processes opening one new file at once both succeed, and the migration is applied once", async () => {
    const file = join(dir, "procs.db");
    const script = `import { openDatabase } from ${JSON.stringify(join(import.meta.dir, "../../src/bay/store/database.ts"))};
      const db = await openDatabase({ url: ${JSON.stringify(`file:${file}`)} });
      const rs = await db.execute("SELECT version FROM schema_migrations");
      console.log(JSON.stringify(rs.rows.map((r) => Number(r.version))));
      db.close();`;
    const procs = [0, 1, 2].map(() => Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" }));
    const results = await Promise.all(
      procs.map(async (p) => ({
        code: await p.exited,
        out: (await new Response(p.stdout).text()).trim(),
        err: await new Response(p.stderr).text(),
      })),
    );
    for (const r of results)
      expect({ code: r.code, out: r.out, err: r.err }).toEqual({ code: 0, out: JSON.stringify(ALL_VERSIONS), err: "" });
    const db = await open(`file:${file}`);
    expect(await versions(db)).toEqual(ALL_VERSIONS);
  });

  test("two openDatabase calls racing on one new file both succeed with every migration applied once", async () => {
    const url = `file:${join(dir, "race.db")}`;
    const [a, b] = await Promise.all([open(url), open(url)]);
    expect(await versions(a)).toEqual(ALL_VERSIONS);
    expect(await versions(b)).toEqual(ALL_VERSIONS);
    // The installation id is generated once, so both see the same.
    expect(await a.execute("SELECT instance_id FROM installation").then((r) => r.rows)).toEqual(
      await b.execute("SELECT instance_id FROM installation").then((r) => r.rows),
    );
    expect(await tables(b)).toEqual(EXPECTED_TABLES);
  });
});

describe("stores", () => {
  let s: Stores;
  const NOW = 1_700_000_000_000;
  beforeEach(async () => {
    s = createStores(await open(`file:${join(dir, "bay.db")}`));
  });

  let n = 0;
  async function sandbox(over: { expiresAt?: number | null; workspaceId?: string } = {}) {
    n++;
    const ws = over.workspaceId ?? `ws-${String(n).padStart(4, "0")}`;
    if (!over.workspaceId)
      await s.workspaces.insert({ id: ws, owner: "alice", managed: true, volumeName: ws, sizeLimitMb: 1, createdAt: NOW });
    const id = `sandbox-${String(n).padStart(4, "0")}`;
    await s.db.execute(
      s.sandboxes.insertStatement({
        id,
        owner: "alice",
        profileId: "p",
        workspaceId: ws,
        createdAt: NOW,
        expiresAt: over.expiresAt ?? null,
      }),
    );
    return id;
  }

  async function withSession(sandboxId: string, status: "starting" | "ready" | "failed" | "stopped") {
    const sess = `sess-${sandboxId}`;
    await s.sessions.insertStarting({
      id: sess,
      sandboxId,
      secret: "s".repeat(43),
      leaseOwner: "r1",
      leaseExpiresAt: NOW + 60_000,
      now: NOW,
    });
    // Claimed a moment before NOW, so sandboxes whose TTL ends at NOW can still hold a session.
    expect(await s.sandboxes.claimCurrentSession(sandboxId, sess, NOW - 10)).toBe(true);
    if (status === "ready") expect(await markReady(sess)).toBe(true);
    if (status === "failed" || status === "stopped") expect(await s.sessions.end(sess, status, NOW, "boom")).toBe(true);
    return sess;
  }

  /** starting → ready and the idle deadline armed, as the session manager does it: one batch. */
  async function markReady(sess: string): Promise<boolean> {
    const [ready] = await s.db.batch(
      [s.sessions.markReadyStatement(sess, "http://127.0.0.1:1", NOW), s.sandboxes.armIdleDeadlineStatement(sess, NOW + 1000)],
      "write",
    );
    return ready?.rowsAffected === 1;
  }

  const statusOf = async (id: string) => (await s.sandboxes.get(id, NOW))!.status;

  describe("sandbox status, computed in SQL", () => {
    test("idle: no session, no error", async () => {
      expect(await statusOf(await sandbox())).toBe("idle");
    });
    test("starting: current session starting", async () => {
      const id = await sandbox();
      await withSession(id, "starting");
      expect(await statusOf(id)).toBe("starting");
    });
    test("ready: current session ready", async () => {
      const id = await sandbox();
      await withSession(id, "ready");
      expect(await statusOf(id)).toBe("ready");
    });
    test("failed: last start failed (last_error set, no live session)", async () => {
      const id = await sandbox();
      await s.sandboxes.setLastError(id, "image missing");
      expect(await statusOf(id)).toBe("failed");
      await s.sandboxes.setLastError(id, null);
      expect(await statusOf(id)).toBe("idle");
    });
    test("a stopped current session counts as idle", async () => {
      const id = await sandbox();
      await withSession(id, "stopped");
      expect(await statusOf(id)).toBe("idle");
    });
    test("expired: expires_at passed wins over a ready session", async () => {
      const id = await sandbox({ expiresAt: NOW - 1 });
      await withSession(id, "ready");
      expect(await statusOf(id)).toBe("expired");
      // …exactly at the deadline too.
      const edge = await sandbox({ expiresAt: NOW });
      expect(await statusOf(edge)).toBe("expired");
      const future = await sandbox({ expiresAt: NOW + 1 });
      expect(await statusOf(future)).toBe("idle");
    });
    test("expired: marked expired even if expires_at moved later", async () => {
      const id = await sandbox({ expiresAt: NOW + 10_000 });
      expect(await s.sandboxes.markExpired(id, NOW)).toBe(true);
      expect(await s.sandboxes.markExpired(id, NOW)).toBe(false);
      expect(await statusOf(id)).toBe("expired");
    });
    test("the list filter agrees with the computed status", async () => {
      const idle = await sandbox();
      const ready = await sandbox();
      await withSession(ready, "ready");
      const expired = await sandbox({ expiresAt: NOW - 1 });
      const ids = async (status: "idle" | "ready" | "expired") =>
        (await s.sandboxes.list({ owner: "alice", limit: 10, status }, NOW)).items.map((r) => r.id);
      expect(await ids("idle")).toEqual([idle]);
      expect(await ids("ready")).toEqual([ready]);
      expect(await ids("expired")).toEqual([expired]);
    });
  });

  describe("claimCurrentSession / releaseCurrentSession", () => {
    test("claims only an empty slot and releases only the session it holds", async () => {
      const id = await sandbox();
      expect(await s.sandboxes.releaseCurrentSession(id, "sess-other")).toBe(false);
      expect(await s.sandboxes.claimCurrentSession(id, "sess-a", NOW)).toBe(true);
      expect(await s.sandboxes.claimCurrentSession(id, "sess-b", NOW)).toBe(false);
      expect((await s.sandboxes.get(id))!.currentSessionId).toBe("sess-a");
      expect(await s.sandboxes.releaseCurrentSession(id, "sess-b")).toBe(false);
      expect(await s.sandboxes.releaseCurrentSession(id, "sess-a")).toBe(true);
      expect((await s.sandboxes.get(id))!.currentSessionId).toBeNull();
    });

    test("of many concurrent claims exactly one wins", async () => {
      const id = await sandbox();
      const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => s.sandboxes.claimCurrentSession(id, `sess-${i}`, NOW)));
      expect(wins.filter(Boolean)).toHaveLength(1);
      const winner = wins.indexOf(true);
      expect((await s.sandboxes.get(id))!.currentSessionId).toBe(`sess-${winner}`);
    });

    test("never claims a sandbox whose TTL has passed, even before the reaper marks it", async () => {
      const id = await sandbox({ expiresAt: NOW });
      expect(await s.sandboxes.claimCurrentSession(id, "sess-late", NOW)).toBe(false);
      expect(await s.sandboxes.claimCurrentSession(id, "sess-early", NOW - 1)).toBe(true);
    });

    test("never claims a deleted sandbox", async () => {
      const id = await sandbox();
      expect(await s.sandboxes.tombstone(id, NOW)).toBe(true);
      expect(await s.sandboxes.claimCurrentSession(id, "sess-a", NOW)).toBe(false);
    });
  });

  describe("delete and start races, settled in SQL", () => {
    test("tombstone ends the current session and tombstones a managed workspace in one go", async () => {
      const id = await sandbox();
      const sess = await withSession(id, "ready");
      const ws = (await s.sandboxes.get(id))!.workspaceId;
      expect(await s.sandboxes.tombstone(id, NOW)).toBe(true);
      expect((await s.sessions.get(sess))!.status).toBe("stopped");
      expect((await s.workspaces.get(ws))!.deletedAt).toBe(NOW);
      expect(await s.sandboxes.tombstone(id, NOW)).toBe(false);
    });

    test("tombstone leaves an external workspace live", async () => {
      await s.workspaces.insert({ id: "ws-ext", owner: "alice", managed: false, volumeName: "ws-ext", sizeLimitMb: 1, createdAt: NOW });
      const id = await sandbox({ workspaceId: "ws-ext" });
      expect(await s.sandboxes.tombstone(id, NOW)).toBe(true);
      expect((await s.workspaces.get("ws-ext"))!.deletedAt).toBeNull();
    });

    test("a start still in flight cannot become ready once its sandbox is deleted", async () => {
      const id = await sandbox();
      const sess = await withSession(id, "starting");
      expect(await s.sandboxes.tombstone(id, NOW)).toBe(true);
      expect(await markReady(sess)).toBe(false);
    });

    test("a sandbox is inserted on an external workspace only while that workspace is live and the owner's", async () => {
      await s.workspaces.insert({ id: "ws-x", owner: "alice", managed: false, volumeName: "ws-x", sizeLimitMb: 1, createdAt: NOW });
      const row = { id: "sandbox-x1", owner: "bob", profileId: "p", workspaceId: "ws-x", createdAt: NOW, expiresAt: null };
      expect((await s.db.execute(s.sandboxes.insertOnExternalWorkspaceStatement(row, 100))).rowsAffected).toBe(0);
      expect(await s.workspaces.markDeletedIfUnused("ws-x", NOW)).toBe(true);
      const mine = { ...row, owner: "alice" };
      expect((await s.db.execute(s.sandboxes.insertOnExternalWorkspaceStatement(mine, 100))).rowsAffected).toBe(0);
    });

    test("a workspace in use is not tombstoned", async () => {
      await s.workspaces.insert({ id: "ws-y", owner: "alice", managed: false, volumeName: "ws-y", sizeLimitMb: 1, createdAt: NOW });
      await sandbox({ workspaceId: "ws-y" });
      expect(await s.workspaces.markDeletedIfUnused("ws-y", NOW)).toBe(false);
      expect((await s.workspaces.get("ws-y"))!.deletedAt).toBeNull();
    });
  });

  describe("start leases", () => {
    test("only the lease holder renews the lease or records a container, and only while starting", async () => {
      const id = await sandbox();
      const sess = await withSession(id, "starting");
      expect(await s.sessions.renewLease(sess, "r2", NOW + 10_000)).toBe(false);
      expect(await s.sessions.setContainer(sess, "c-other", "r2")).toBe(false);
      expect(await s.sessions.renewLease(sess, "r1", NOW + 10_000)).toBe(true);
      expect(await s.sessions.setContainer(sess, "c-1", "r1")).toBe(true);
      // Ended (a stop, or a takeover after the lease lapsed): the holder learns it lost.
      expect(await s.sessions.end(sess, "failed", NOW, "start abandoned")).toBe(true);
      expect(await s.sessions.renewLease(sess, "r1", NOW + 20_000)).toBe(false);
      expect(await s.sessions.setContainer(sess, "c-2", "r1")).toBe(false);
      expect((await s.sessions.get(sess))!.containerId).toBe("c-1");
    });
  });

  describe("one live sandbox per workspace", () => {
    test("a second live sandbox on a workspace is refused by the database", async () => {
      const first = await sandbox();
      const ws = (await s.sandboxes.get(first))!.workspaceId;
      await expect(sandbox({ workspaceId: ws })).rejects.toThrow(/UNIQUE/);
    });

    test("after the first is deleted, the workspace can host another", async () => {
      const first = await sandbox();
      const ws = (await s.sandboxes.get(first))!.workspaceId;
      await s.sandboxes.tombstone(first, NOW);
      const second = await sandbox({ workspaceId: ws });
      expect((await s.workspaces.get(ws))!.sandboxId).toBe(second);
    });
  });

  describe("owner scoping", () => {
    test("findLive does not return another owner's or a deleted sandbox", async () => {
      const id = await sandbox();
      expect(await s.sandboxes.findLive("alice", id)).not.toBeNull();
      expect(await s.sandboxes.findLive("bob", id)).toBeNull();
      await s.sandboxes.tombstone(id, NOW);
      expect(await s.sandboxes.findLive("alice", id)).toBeNull();
      expect(await s.sandboxes.get(id)).not.toBeNull(); // the tombstone stays
    });
  });
});
