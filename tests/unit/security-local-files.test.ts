/**
 * What Bay keeps on the host's disk, against another local user (Bay runs as root,
 * with the usual umask 022):
 *
 * * the database holds every live session's secret (and API key hashes): readable
 *   by anyone, it would let any local process drive any Ship through its loopback
 *   port. Its directory (when Bay creates it) is 0700, the file and its WAL/SHM
 *   0600, and an existing database is tightened on open;
 * * the upload spool holds tenants' bytes in transit: a spool base another user
 *   can write into (e.g. a `/tmp/bay-spool` made before Bay's first start) would let
 *   them read, swap or redirect those files, so Bay never uses one.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { UploadSpool } from "../../src/bay/api/upload-spool.ts";
import { openDatabase } from "../../src/bay/store/database.ts";

const dirs: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), "bay-local-files-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const mode = (path: string) => lstatSync(path).mode & 0o777;

describe("the database file", () => {
  test("a new database: its directory 0700, the file, WAL and SHM 0600", async () => {
    const path = join(scratch(), "data", "nested", "bay.db");
    const db = await openDatabase({ url: `file:${path}` });
    await db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'probe', 0)");
    for (const f of [path, `${path}-wal`, `${path}-shm`]) {
      expect(existsSync(f)).toBe(true);
      expect([f, mode(f).toString(8)]).toEqual([f, "600"]);
    }
    expect(mode(dirname(path)).toString(8)).toBe("700");
    db.close();
  });

  test("an existing world-readable database is made private when Bay opens it", async () => {
    const path = join(scratch(), "bay.db");
    const first = await openDatabase({ url: `file:${path}` });
    first.close();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o644);
    const db = await openDatabase({ url: `file:${path}` });
    await db.execute("SELECT 1");
    for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) expect([f, mode(f).toString(8)]).toEqual([f, "600"]);
    db.close();
  });
});

describe("the database file, spelled file://localhost/…", () => {
  test("is the same file, made private too (it was left as found and a stray file made under /localhost)", async () => {
    const path = join(scratch(), "data", "bay.db");
    const db = await openDatabase({ url: `file://localhost${path}` });
    await db.execute("SELECT 1");
    for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) expect([f, mode(f).toString(8)]).toEqual([f, "600"]);
    expect(mode(dirname(path)).toString(8)).toBe("700");
    expect(existsSync(join("/localhost", path))).toBe(false);
    db.close();
  });
});

describe("the upload spool", () => {
  test("a spool base anyone can write into, or a symlink, is never used", async () => {
    const open = join(scratch(), "bay-spool");
    mkdirSync(open);
    chmodSync(open, 0o777);
    // Another user's trap: the directory this process would use, made in advance.
    mkdirSync(join(open, String(process.pid)));
    chmodSync(join(open, String(process.pid)), 0o777);
    const elsewhere = scratch();
    const linked = join(scratch(), "bay-spool");
    symlinkSync(elsewhere, linked);
    for (const base of [open, linked]) {
      const spool = new UploadSpool({ baseDir: base, maxBytes: 1024 });
      expect(spool.dir.startsWith(`${base}/`)).toBe(false);
      expect(spool.dir.startsWith(`${elsewhere}/`)).toBe(false);
      const st = lstatSync(spool.dir);
      expect(st.isDirectory()).toBe(true);
      expect(st.uid).toBe(process.getuid!());
      expect(mode(spool.dir) & 0o077).toBe(0);
      const slot = await spool.open("alice");
      writeFileSync(join(slot.dir, "f"), "x");
      expect(slot.dir.startsWith(`${spool.dir}/`)).toBe(true);
      await slot.release();
      rmSync(spool.dir, { recursive: true, force: true });
    }
  });

  test("a private base is used as configured", () => {
    const base = join(scratch(), "spool");
    const spool = new UploadSpool({ baseDir: base, maxBytes: 1024 });
    expect(spool.dir).toBe(join(base, String(process.pid)));
    expect(mode(base).toString(8)).toBe("700");
  });
});
