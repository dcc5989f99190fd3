/**
 * findLive's read cache (store/read-cache.ts): what it serves is always what the
 * database would answer. Another connection's commit (a second Bay process on
 * the same file) and this connection's own writes are seen at once; the TTL
 * passing turns the status to expired without any write; a libSQL server
 * (no version) is never cached; what it serves cannot be changed by a caller.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/bay/store/database.ts";
import { createStores, type Stores } from "../../src/bay/store/index.ts";
import { ReadCache } from "../../src/bay/store/read-cache.ts";

const NOW = 1_700_000_000_000;
let dir: string;
const opened: Database[] = [];
let a: Stores; // this process
let b: Stores; // another Bay process on the same file

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-read-cache-"));
  const url = `file:${join(dir, "bay.db")}`;
  for (const _ of [0, 1]) opened.push(await openDatabase({ url }));
  a = createStores(opened[0]!);
  b = createStores(opened[1]!);
});
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function sandbox(s: Stores, id: string, expiresAt: number | null = null): Promise<void> {
  await s.workspaces.insert({ id: `ws-${id}`, owner: "alice", managed: true, volumeName: `ws-${id}`, sizeLimitMb: 1, createdAt: NOW });
  await s.db.execute(
    s.sandboxes.insertStatement({ id, owner: "alice", profileId: "p", workspaceId: `ws-${id}`, createdAt: NOW, expiresAt }),
  );
}

describe("findLive's read cache", () => {
  test("a second read of an unchanged sandbox runs no query", async () => {
    await sandbox(a, "sb-1");
    const first = await a.sandboxes.findLive("alice", "sb-1", NOW);
    let queries = 0;
    const db = opened[0]! as Database & { one: (...args: unknown[]) => unknown };
    const one = db.one.bind(db);
    db.one = (...args: unknown[]) => {
      queries++;
      return one(...args);
    };
    const second = await a.sandboxes.findLive("alice", "sb-1", NOW + 1000);
    expect(second).toEqual(first!);
    expect(queries).toBe(0);
  });

  test("another process's commit is seen by the next read: a delete, a started session, an error", async () => {
    await sandbox(a, "sb-1");
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW))?.status).toBe("idle");
    await b.sandboxes.setLastError("sb-1", "boom");
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW))?.status).toBe("failed");
    await b.sessions.insertStarting({
      id: "sess-1",
      sandboxId: "sb-1",
      secret: "s".repeat(43),
      leaseOwner: "r2",
      leaseExpiresAt: NOW + 60_000,
      now: NOW,
    });
    expect(await b.sandboxes.claimCurrentSession("sb-1", "sess-1", NOW)).toBe(true);
    const starting = await a.sandboxes.findLive("alice", "sb-1", NOW);
    expect(starting?.status).toBe("starting");
    expect(starting?.session?.id).toBe("sess-1");
    expect(await b.sandboxes.tombstone("sb-1", NOW)).toBe(true);
    expect(await a.sandboxes.findLive("alice", "sb-1", NOW)).toBeNull();
  });

  test("this connection's own writes are seen by the next read", async () => {
    await sandbox(a, "sb-1");
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW))?.lastError).toBeNull();
    await a.sandboxes.setLastError("sb-1", "boom");
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW))?.lastError).toBe("boom");
    await a.db.batch([{ sql: "UPDATE sandboxes SET last_error = NULL WHERE id = ?", args: ["sb-1"] }], "write");
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW))?.lastError).toBeNull();
  });

  test("a sandbox whose TTL passes reads expired without any write", async () => {
    await sandbox(a, "sb-1", NOW + 5000);
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW))?.status).toBe("idle");
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW + 4999))?.status).toBe("idle");
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW + 5000))?.status).toBe("expired");
  });

  test("another owner never gets the cached sandbox, and a miss is not remembered", async () => {
    await sandbox(a, "sb-1");
    expect(await a.sandboxes.findLive("alice", "sb-1", NOW)).not.toBeNull();
    expect(await a.sandboxes.findLive("mallory", "sb-1", NOW)).toBeNull();
    expect(await a.sandboxes.findLive("alice", "sb-2", NOW)).toBeNull();
    await sandbox(b, "sb-2");
    expect((await a.sandboxes.findLive("alice", "sb-2", NOW))?.id).toBe("sb-2");
  });

  test("what it serves is frozen: a caller cannot change the next caller's answer", async () => {
    await sandbox(a, "sb-1");
    const sb = (await a.sandboxes.findLive("alice", "sb-1", NOW))!;
    expect(() => {
      (sb as { status: string }).status = "ready";
    }).toThrow();
    expect((await a.sandboxes.findLive("alice", "sb-1", NOW))?.status).toBe("idle");
  });

  test("a database without a version (a libSQL server) is read every time", async () => {
    let reads = 0;
    const plain = { execute: async () => ({}), batch: async () => [], close() {} } as unknown as Database;
    const cache = new ReadCache<{ n: number }>(plain);
    for (let i = 0; i < 3; i++)
      await cache.get(
        "k",
        async () => ({ n: ++reads }),
        () => true,
      );
    expect(reads).toBe(3);
  });
});

describe("LocalDatabase.version", () => {
  test("another process's commit changes it (WAL index in shared memory), a read does not", async () => {
    const db = opened[0]! as Database & { version(): string; versionSource(): string };
    await db.execute("CREATE TABLE probe (x INTEGER)");
    // On Linux the header is read through a shared mapping (no system call per version).
    expect(db.versionSource()).toBe(process.platform === "linux" ? "map" : "pread");
    const before = db.version();
    await db.execute("SELECT COUNT(*) FROM probe");
    expect(db.version()).toBe(before);
    const child = Bun.spawn(
      [
        "bun",
        "-e",
        `const { LocalDatabase } = await import(${JSON.stringify(join(import.meta.dir, "../../src/bay/store/local-database.ts"))});
         const db = new LocalDatabase(${JSON.stringify(join(dir, "bay.db"))}, 5000);
         await db.execute("INSERT INTO probe VALUES (1)");
         db.close();`,
      ],
      { stderr: "pipe" },
    );
    expect(await child.exited).toBe(0);
    const after = db.version();
    expect(after).not.toBe(before);
    expect(db.version()).toBe(after);
  });

  test("without WAL (a rollback journal) it asks SQLite's data_version and still sees another connection's commit", async () => {
    const { LocalDatabase } = await import("../../src/bay/store/local-database.ts");
    const path = join(dir, "plain.db");
    const mine = new LocalDatabase(path, 5000);
    const other = new LocalDatabase(path, 5000);
    try {
      await mine.execute("CREATE TABLE probe (x INTEGER)");
      const v1 = mine.version();
      expect(mine.versionSource()).toBe("data_version");
      expect(mine.version()).toBe(v1);
      await other.execute("INSERT INTO probe VALUES (1)");
      const v2 = mine.version();
      expect(v2).not.toBe(v1);
      await mine.execute("INSERT INTO probe VALUES (2)");
      expect(mine.version()).not.toBe(v2);
    } finally {
      mine.close();
      other.close();
    }
  });
});
