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
import { queryOne } from "../../src/bay/store/rows.ts";
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

  test("a single-row read (queryOne: findLive, the API-key lookup) goes through the guard too: busy", async () => {
    const path = join(dir, "locked-one.db");
    const holder = new LocalDatabase(path, 100);
    const db = guardDatabase(new LocalDatabase(path, 100));
    await holder.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)");
    await holder.execute("INSERT INTO t VALUES (7)");
    await holder.execute("BEGIN EXCLUSIVE");
    const read = { sql: "SELECT a FROM t WHERE a = ?", args: [7] };
    expectUnavailable(await failure(queryOne(db, read)), "busy", 1);
    expectUnavailable(await failure(db.one(read)), "busy", 1);
    await holder.execute("COMMIT");
    expect((await queryOne(db, read))?.a).toBe(7);
    // The engine's own synchronous answers stay its own: the read cache's change version.
    expect(typeof db.version()).toBe("string");
    expect(db).toBeInstanceOf(LocalDatabase);
  });

  test("a statement's own failure is not the database's", async () => {
    const db = guardDatabase(new LocalDatabase(join(dir, "own.db"), 100));
    await db.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)");
    await db.execute("INSERT INTO t VALUES (1)");
    for (const e of [
      await failure(db.execute("INSERT INTO t VALUES (1)")),
      await failure(db.execute("SELEC 1")),
      await failure(queryOne(db, { sql: "SELEC 1", args: [] })),
    ]) {
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

describe("a libSQL server behind a proxy that answers for it", () => {
  const HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
  const html = (status: number) => () => new Response(HTML, { status, headers: { "content-type": "text/html" } });
  /** What a proxy (or a broken link) answers instead of the server's Hrana JSON. */
  const ANSWERS: Array<[string, () => Response]> = [
    ["a 502 HTML page", html(502)],
    ["a 503 HTML page", html(503)],
    ["a 200 HTML page instead of the Hrana JSON", html(200)],
    ["a 502 labelled JSON with an HTML body", () => new Response(HTML, { status: 502, headers: { "content-type": "application/json" } })],
    ["a 502 labelled JSON with a null body", () => new Response("null", { status: 502, headers: { "content-type": "application/json" } })],
    [
      "a JSON answer cut short",
      () => new Response('{"baton":null,"base_url":null,"results":[', { headers: { "content-type": "application/json" } }),
    ],
    [
      "a corrupt gzip body",
      () =>
        new Response(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), {
          headers: { "content-type": "application/json", "content-encoding": "gzip" },
        }),
    ],
  ];
  let sqld: Sqld;
  let proxy: ReturnType<typeof Bun.serve>;
  let url: string;
  let db: Database;
  /** What the proxy answers instead of forwarding; null: it forwards to sqld. */
  let answer: (() => Response) | null = null;
  beforeAll(async () => {
    sqld = await startSqld();
    proxy = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        if (answer) return answer();
        const { pathname, search } = new URL(req.url);
        const upstream = await fetch(`${sqld.url}${pathname}${search}`, {
          method: req.method,
          headers: { "content-type": req.headers.get("content-type") ?? "application/json" },
          body: req.method === "GET" ? null : await req.arrayBuffer(),
        });
        // Re-sent decoded (fetch has undone any Content-Encoding): only the type is kept.
        return new Response(await upstream.arrayBuffer(), {
          status: upstream.status,
          headers: { "content-type": upstream.headers.get("content-type") ?? "application/json" },
        });
      },
    });
    url = `http://127.0.0.1:${proxy.port}`;
    db = await openDatabase({ url, callDeadlineMs: 2000 });
  });
  afterAll(async () => {
    db?.close();
    proxy?.stop(true);
    await sqld?.close();
  });

  test.each(ANSWERS)("%s: unreachable, Retry-After 2, on open, execute and batch; then back", async (_name, bad) => {
    answer = bad;
    try {
      expectUnavailable(await failure(db.execute("SELECT 1")), "unreachable", 2);
      expectUnavailable(await failure(db.batch([["SELECT 1"]], "write")), "unreachable", 2);
      expectUnavailable(await failure(openDatabase({ url, callDeadlineMs: 2000 })), "unreachable", 2);
    } finally {
      answer = null;
    }
    expect((await db.execute("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  });

  /** A proxy's refusal (an auth proxy, an API gateway), labelled exactly `application/json` whatever its body. */
  const REFUSALS: Array<[string, number, string]> = [
    ["a 401 HTML page labelled JSON", 401, "<html><body><h1>401 Authorization Required</h1></body></html>"],
    ["a 403 HTML page labelled JSON", 403, "<html><body><h1>403 Forbidden</h1></body></html>"],
    ["a 404 HTML page labelled JSON", 404, "<html><body><h1>404 Not Found</h1></body></html>"],
    ["a 401 with an API gateway's JSON message", 401, '{"message":"Unauthorized"}'],
    ["a 403 with a null body", 403, "null"],
  ];
  test.each(REFUSALS)("%s: rejected, Retry-After 60, on open, execute and batch; then back", async (_name, status, body) => {
    answer = () => new Response(body, { status, headers: { "content-type": "application/json" } });
    try {
      expectUnavailable(await failure(db.execute("SELECT 1")), "rejected", 60);
      expectUnavailable(await failure(db.batch([["SELECT 1"]], "write")), "rejected", 60);
      expectUnavailable(await failure(openDatabase({ url, callDeadlineMs: 2000 })), "rejected", 60);
    } finally {
      answer = null;
    }
    expect((await db.execute("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  });

  test("through the proxy, a statement's own failure still passes on", async () => {
    await db.execute("CREATE TABLE IF NOT EXISTS proxied (a INTEGER PRIMARY KEY)");
    await db.execute("INSERT OR IGNORE INTO proxied VALUES (1)");
    for (const e of [await failure(db.execute("INSERT INTO proxied VALUES (1)")), await failure(db.execute("SELEC 1"))]) {
      expect(e).not.toBeInstanceOf(BayError);
    }
  });
});
