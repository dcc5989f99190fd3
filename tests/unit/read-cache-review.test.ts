/**
 * Review of findLive's read cache and LocalDatabase.version() (rcreview).
 *
 * 1. version() maps the `-shm` file with Bun.mmap, which opens the file and
 *    closes its descriptor. Closing any descriptor of a file drops every POSIX
 *    lock this process holds on it, SQLite's shared lock on the "DMS" byte
 *    included: the lock that tells a process opening the database that it is
 *    not the first. The next process that opens the file (a second Bay, a `bay`
 *    command, a backup tool) then truncates the `-shm` to 3 bytes and rebuilds
 *    the WAL index under the live connection; a connection inside a write
 *    transaction at that moment dies of SIGBUS.
 * 2. The cache key `${owner}\n${id}` is ambiguous when an owner (a JWT subject)
 *    or an id (any string in the path) contains a newline.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Database, openDatabase } from "../../src/bay/store/database.ts";
import { createStores } from "../../src/bay/store/index.ts";
import type { LocalDatabase } from "../../src/bay/store/local-database.ts";

const ROOT = resolve(import.meta.dir, "../..");
const NOW = 1_700_000_000_000;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bay-rcreview-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** This process's POSIX locks on a file, from /proc/locks: "start end" ranges. */
function myLocks(file: string): string[] {
  const ino = statSync(file).ino;
  return readFileSync("/proc/locks", "utf8")
    .split("\n")
    .filter((l) => l.includes(` ${process.pid} `) && l.includes(`:${ino} `))
    .map((l) => l.split(/\s+/).slice(-2).join(" "));
}

describe("LocalDatabase.version() and SQLite's locks", () => {
  // SQLite's unix VFS: the DMS byte of the -shm file is byte 128 (UNIX_SHM_BASE 120 + 8).
  test.if(process.platform === "linux")("this process keeps its shared lock on the -shm DMS byte after version()", async () => {
    const path = join(dir, "bay.db");
    const db = (await openDatabase({ url: `file:${path}` })) as LocalDatabase;
    try {
      await db.execute("SELECT 1");
      expect(myLocks(`${path}-shm`)).toContain("128 128");
      db.version();
      expect(myLocks(`${path}-shm`)).toContain("128 128");
    } finally {
      db.close();
    }
  });

  test("another process opening the database while this one writes does not crash it", async () => {
    const path = join(dir, "bay.db");
    // The Bay side runs in a child so that a SIGBUS shows as its exit, not this runner's.
    const bay = `
      import { LocalDatabase } from ${JSON.stringify(join(ROOT, "src/bay/store/local-database.ts"))};
      const db = new LocalDatabase(${JSON.stringify(path)}, 5000);
      await db.execute("PRAGMA journal_mode = WAL");
      await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
      await db.execute("INSERT INTO t (v) VALUES ('seed')");
      db.version(); // what findLive's cache does on the first GET
      // A write transaction that has written frames (and their WAL index entries) not yet committed.
      await db.execute("PRAGMA cache_size = 5");
      await db.execute("BEGIN IMMEDIATE");
      for (let i = 0; i < 400; i++) await db.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["x".repeat(500)] });
      // Meanwhile another process opens the same database (a second Bay starting, a bay command).
      Bun.spawnSync(["bun", "-e", ${JSON.stringify(
        `import Engine from ${JSON.stringify(join(ROOT, "node_modules/libsql"))}; try { new Engine(${JSON.stringify(path)}, { timeout: 0 }).prepare("SELECT count(*) FROM t").get([]); } catch {}`,
      )}]);
      for (let i = 0; i < 400; i++) await db.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: ["y".repeat(500)] });
      await db.execute("COMMIT");
      const n = (await db.execute("SELECT count(*) AS n FROM t")).rows[0].n;
      const ok = (await db.execute("PRAGMA integrity_check")).rows[0].integrity_check;
      console.log(JSON.stringify({ n, ok }));
    `;
    const proc = Bun.spawn(["bun", "-e", bay], { stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect({ code, signal: proc.signalCode }).toEqual({ code: 0, signal: null });
    expect(JSON.parse(out.trim())).toEqual({ n: 801, ok: "ok" });
  }, 60_000);
});

describe("findLive's cache key", () => {
  test("an owner's read never answers with another owner's cached sandbox, newlines included", async () => {
    const db: Database = await openDatabase({ url: `file:${join(dir, "bay.db")}` });
    try {
      const s = createStores(db);
      // A JWT subject may hold any character; a sandbox id in the path is any string.
      const victim = "jwt:x\ny";
      await s.workspaces.insert({ id: "ws-1", owner: victim, managed: true, volumeName: "ws-1", sizeLimitMb: 1, createdAt: NOW });
      await db.execute(
        s.sandboxes.insertStatement({ id: "sb-1", owner: victim, profileId: "p", workspaceId: "ws-1", createdAt: NOW, expiresAt: null }),
      );
      expect((await s.sandboxes.findLive(victim, "sb-1", NOW))?.owner).toBe(victim);
      // Owner "jwt:x" asking for id "y\nsb-1": the same key, "jwt:x\ny\nsb-1".
      expect(await s.sandboxes.findLive("jwt:x", "y\nsb-1", NOW)).toBeNull();
    } finally {
      db.close();
    }
  });
});
