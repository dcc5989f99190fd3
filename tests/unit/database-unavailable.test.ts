/**
 * A database that fails (a libSQL server refused, stopped answering or gone; a file
 * locked past its busy timeout) becomes 503 `database_unavailable` with a reason and
 * Retry-After; a statement's own failure (syntax, constraint) passes on as it was.
 * Real engines: the embedded libSQL file and a real sqld.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BayError } from "../../src/bay/errors.ts";
import { openDatabase, type Database } from "../../src/bay/store/database.ts";
import { guardDatabase } from "../../src/bay/store/database-errors.ts";
import { LocalDatabase } from "../../src/bay/store/local-database.ts";
import { startSqld, type Sqld } from "../support/sqld.ts";

const dir = mkdtempSync(join(tmpdir(), "bay-db-unavailable-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}

function expectUnavailable(e: unknown, reason: string, retryAfter: number): void {
  expect(e).toBeInstanceOf(BayError);
  const err = e as BayError;
  expect(err.code).toBe("database_unavailable");
  expect(err.status).toBe(503);
  expect(err.details).toEqual({ reason });
  expect(err.retryAfter).toBe(retryAfter);
  expect(err.message).not.toMatch(/sqlite|libsql|ECONN/i);
}

describe("an embedded database file", () => {
  test("locked by another writer past the busy timeout: busy, Retry-After 1", async () => {
    const path = join(dir, "locked.db");
    const holder = new LocalDatabase(path, 100);
    const db = guardDatabase(new LocalDatabase(path, 100));
    await holder.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)");
    await holder.execute("BEGIN EXCLUSIVE");
    expectUnavailable(await failure(db.execute("INSERT INTO t VALUES (1)")), "busy", 1);
    expectUnavailable(await failure(db.batch([["INSERT INTO t VALUES (2)"]], "write")), "busy", 1);
    await holder.execute("COMMIT");
    await db.execute("INSERT INTO t VALUES (1)");
    expect((await db.execute("SELECT count(*) AS n FROM t")).rows[0]!.n).toBe(1);
  });

  test("a statement's own failure is not the database's", async () => {
    const db = guardDatabase(new LocalDatabase(join(dir, "own.db"), 100));
    await db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)");
    await db.execute("INSERT INTO t VALUES (1)");
    for (const e of [await failure(db.execute("INSERT INTO t VALUES (1)")), await failure(db.execute("SELEC 1"))]) {
      expect(e).not.toBeInstanceOf(BayError);
    }
  });
});

describe("a libSQL server", () => {
  let sqld: Sqld;
  let db: Database;
  beforeAll(async () => {
    sqld = await startSqld();
    db = await openDatabase({ url: sqld.url, callDeadlineMs: 1000 });
  });
  afterAll(async () => {
    sqld.resume();
    db?.close();
    await sqld?.close();
  });

  test("Bay's schema applies on it, and a statement's own failure passes on", async () => {
    const tables = await db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sandboxes'");
    expect(tables.rows.length).toBe(1);
    expect(await failure(db.execute("SELEC 1"))).not.toBeInstanceOf(BayError);
    await db.execute("CREATE TABLE IF NOT EXISTS t (a INTEGER PRIMARY KEY)");
    await db.execute("INSERT OR IGNORE INTO t VALUES (1)");
    expect(await failure(db.execute("INSERT INTO t VALUES (1)"))).not.toBeInstanceOf(BayError);
  });

  test("paused (answers nothing): timeout after the call deadline; then back", async () => {
    sqld.pause();
    try {
      expectUnavailable(await failure(db.execute("SELECT 1")), "timeout", 2);
    } finally {
      sqld.resume();
    }
    expect((await db.execute("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  });

  test("killed: unreachable; restarted: the same client carries on with the data", async () => {
    await db.execute("CREATE TABLE IF NOT EXISTS kept (v TEXT)");
    await db.execute("INSERT INTO kept VALUES ('before')");
    await sqld.kill();
    expectUnavailable(await failure(db.execute("SELECT 1")), "unreachable", 2);
    expectUnavailable(await failure(db.batch([["INSERT INTO kept VALUES ('lost')"]], "write")), "unreachable", 2);
    await sqld.restart();
    expect((await db.execute("SELECT v FROM kept")).rows.map((r) => r.v)).toEqual(["before"]);
  });

  test("a server that refuses Bay's credentials: rejected (a configuration error), Retry-After 60", async () => {
    const guarded = await startSqld(["--http-auth", `basic:${btoa("bay:right")}`]);
    try {
      expectUnavailable(await failure(openDatabase({ url: guarded.url })), "rejected", 60);
    } finally {
      await guarded.close();
    }
  });

  test("never reachable: opening it fails with unreachable, not a raw socket error", async () => {
    await sqld.kill();
    try {
      expectUnavailable(await failure(openDatabase({ url: sqld.url })), "unreachable", 2);
    } finally {
      await sqld.restart();
    }
  });
});
