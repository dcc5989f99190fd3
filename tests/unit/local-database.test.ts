/**
 * The embedded database (LocalDatabase over the libSQL engine, statements kept)
 * keeps the client's semantics the stores rely on: named and positional
 * arguments, integers as numbers, booleans as 1/0, rows by column name,
 * rowsAffected, RETURNING rows, a batch as one transaction that rolls back
 * whole, single-row reads, and refusal of undefined values.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/bay/store/database.ts";
import { LocalDatabase } from "../../src/bay/store/local-database.ts";
import { queryOne } from "../../src/bay/store/rows.ts";

let dir: string;
let db: LocalDatabase;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-localdb-"));
  db = new LocalDatabase(join(dir, "t.db"), 1000);
  await db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, flag INTEGER, note TEXT)");
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("LocalDatabase", () => {
  test("named arguments with or without a prefix, positional arrays, numbers and booleans", async () => {
    await db.execute({ sql: "INSERT INTO t VALUES (:id, :n, :flag, :note)", args: { id: "a", n: 1, flag: true, note: null } });
    await db.execute({ sql: "INSERT INTO t VALUES (?, ?, ?, ?)", args: ["b", 2, false, "x"] });
    await db.execute({ sql: "INSERT INTO t VALUES ($id, @n, :flag, :note)", args: { $id: "c", "@n": 3, ":flag": 1, note: "y" } });
    const rs = await db.execute("SELECT * FROM t ORDER BY id");
    expect(rs.rows.map((r) => ({ ...r }) as Record<string, unknown>)).toEqual([
      { id: "a", n: 1, flag: 1, note: null },
      { id: "b", n: 2, flag: 0, note: "x" },
      { id: "c", n: 3, flag: 1, note: "y" },
    ]);
    expect(typeof rs.rows[0]!.n).toBe("number");
  });

  test("rowsAffected for writes; RETURNING answers its rows", async () => {
    await db.batch(["INSERT INTO t VALUES ('a', 1, 0, NULL)", "INSERT INTO t VALUES ('b', 2, 0, NULL)"], "write");
    const upd = await db.execute({ sql: "UPDATE t SET n = n + 10 WHERE n < ?", args: [5] });
    expect(upd.rowsAffected).toBe(2);
    const none = await db.execute({ sql: "UPDATE t SET n = 0 WHERE id = ?", args: ["zz"] });
    expect(none.rowsAffected).toBe(0);
    const ret = await db.execute({ sql: "UPDATE t SET n = 0 WHERE id = ? RETURNING id, n", args: ["a"] });
    expect(ret.rows.map((r) => ({ ...r }) as Record<string, unknown>)).toEqual([{ id: "a", n: 0 }]);
  });

  test("a batch is one transaction: a failing statement rolls back the ones before it", async () => {
    await expect(db.batch(["INSERT INTO t VALUES ('a', 1, 0, NULL)", "INSERT INTO t VALUES ('a', 2, 0, NULL)"], "write")).rejects.toThrow(
      /UNIQUE constraint failed: t\.id/,
    );
    expect((await db.execute("SELECT COUNT(*) AS c FROM t")).rows[0]!.c).toBe(0);
    // The connection is usable afterwards (no transaction left open).
    const ok = await db.batch([{ sql: "INSERT INTO t VALUES (?, ?, ?, ?)", args: ["a", 1, 0, null] }], "write");
    expect(ok[0]!.rowsAffected).toBe(1);
  });

  test("queryOne: the first row or null", async () => {
    await db.execute("INSERT INTO t VALUES ('a', 1, 0, NULL)");
    const row = await queryOne(db, { sql: "SELECT id, n FROM t WHERE id = ?", args: ["a"] });
    expect([row?.id, row?.n]).toEqual(["a", 1]);
    expect(await queryOne(db, { sql: "SELECT id FROM t WHERE id = ?", args: ["b"] })).toBeNull();
  });

  test("undefined is refused, as by the client; a closed database refuses calls", async () => {
    await expect(db.execute({ sql: "SELECT ?", args: [undefined as unknown as null] })).rejects.toThrow(/undefined/);
    db.close();
    expect(db.closed).toBe(true);
    await expect(db.execute("SELECT 1")).rejects.toThrow(/closed/);
  });

  test("openDatabase gives local URLs this engine, in WAL mode with NORMAL sync, migrated", async () => {
    const opened = await openDatabase({ url: `file:${join(dir, "bay.db")}` });
    try {
      expect(opened).toBeInstanceOf(LocalDatabase);
      expect((await opened.execute("PRAGMA journal_mode")).rows[0]!.journal_mode).toBe("wal");
      expect((await opened.execute("PRAGMA synchronous")).rows[0]!.synchronous).toBe(1); // NORMAL
      expect((await opened.execute("PRAGMA foreign_keys")).rows[0]!.foreign_keys).toBe(1);
      const mem = await openDatabase({ url: ":memory:" });
      expect((await mem.execute("SELECT COUNT(*) AS c FROM sandboxes")).rows[0]!.c).toBe(0);
      mem.close();
    } finally {
      opened.close();
    }
  });
});
