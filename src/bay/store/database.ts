/**
 * Opens the libSQL database (embedded file, :memory:, or a libSQL server URL)
 * and applies pending migrations inside one write transaction, so several Bay
 * replicas starting at once apply each migration exactly once.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { createClient, type InArgs, type InStatement, type ResultSet, type TransactionMode } from "@libsql/client";
import { deadlineFetch, guardDatabase } from "./database-errors.ts";
import { LocalDatabase } from "./local-database.ts";
import { MIGRATIONS, type Migration } from "./migrations.ts";

/** What the stores use of a libSQL database: a `@libsql/client` Client (remote) or a LocalDatabase (embedded). */
export interface Database {
  execute(stmt: InStatement): Promise<ResultSet>;
  execute(sql: string, args?: InArgs): Promise<ResultSet>;
  /** The statements as one transaction. */
  batch(stmts: Array<InStatement | [string, InArgs?]>, mode?: TransactionMode): Promise<ResultSet[]>;
  close(): void;
}

/** How long a local writer waits for another's lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;
/** How long a call to a libSQL server may take before it is given up (database_unavailable, reason timeout). */
export const SERVER_CALL_DEADLINE_MS = 10_000;

export interface OpenDatabaseOptions {
  url: string;
  authToken?: string | undefined;
  migrations?: Migration[];
  /** For a libSQL server: how long one call may take (default SERVER_CALL_DEADLINE_MS). */
  callDeadlineMs?: number;
}

/** Opens the database and brings its schema up to date. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const url = opts.url;
  const file = localDatabaseFile(url);
  if (file) makePrivate(file);
  const local = url.startsWith("file:") || url === ":memory:";
  // Embedded: one connection of the libSQL engine with its statements kept (see
  // local-database.ts); a libSQL server: the client, each call with a deadline.
  // Either way a failure of the database itself is a 503 (database-errors.ts).
  const db: Database = guardDatabase(
    local
      ? new LocalDatabase(localPath(url), BUSY_TIMEOUT_MS)
      : createClient({ url, authToken: opts.authToken, fetch: deadlineFetch(opts.callDeadlineMs ?? SERVER_CALL_DEADLINE_MS) }),
  );
  if (local) {
    // WAL lets readers proceed while one writer holds the lock; the busy timeout makes
    // concurrent writers (several Bay processes on one file) wait instead of failing.
    await db.execute(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (url !== ":memory:" && !url.includes(":memory:")) {
      await db.execute("PRAGMA journal_mode = WAL");
      // In WAL mode, NORMAL syncs at checkpoints instead of on every commit. Every
      // statement of an embedded database runs on Bay's event loop, and a commit's
      // fsync stalled all of Bay for 10-200 ms on a busy host. A Bay process that
      // crashes or is killed loses nothing (its commits are in the WAL file); an
      // operating-system crash or power cut may lose the last commits before a
      // checkpoint, never consistency; reconcile repairs Docker against what remains.
      await db.execute("PRAGMA synchronous = NORMAL");
    }
  }
  await db.execute("PRAGMA foreign_keys = ON");
  await migrate(db, opts.migrations ?? MIGRATIONS);
  return db;
}

/**
 * The database holds every live session's secret: any local user who could read
 * it could drive any Ship through its loopback port. So a directory Bay creates
 * for it is 0700, and the file is created 0600 before SQLite opens it (SQLite
 * gives its WAL and SHM files the database's own mode); an existing database and
 * its companions are tightened to 0600 (best effort: a file Bay's user does not
 * own stays as it is).
 */
function makePrivate(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  // An empty file is a new database to SQLite.
  closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      if (existsSync(file)) chmodSync(file, 0o600);
    } catch {
      // Not ours to change.
    }
  }
}

/**
 * Applies migrations newer than the recorded version; returns the versions applied.
 * Each migration and its version row run as one batch: a single write transaction
 * that never holds the lock across an await (an interactive transaction would, and
 * a second client in the same process blocking on that lock would stall the event
 * loop until its busy timeout). When several processes race, the loser's batch fails
 * (table exists / version row exists), rolls back, and it finds the version applied.
 */
export async function migrate(db: Database, migrations: Migration[]): Promise<number[]> {
  await db.execute(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= (await currentVersion(db))) continue;
    try {
      await db.batch(
        [
          ...m.statements,
          { sql: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", args: [m.version, m.name, Date.now()] },
        ],
        "write",
      );
      applied.push(m.version);
    } catch (e) {
      if ((await currentVersion(db)) >= m.version) continue; // another process applied it first
      throw e;
    }
  }
  return applied;
}

async function currentVersion(db: Database): Promise<number> {
  const rs = await db.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations");
  return Number(rs.rows[0]?.v ?? 0);
}

/** The file behind a local database URL (`file:x.db` → `x.db`), or null (in memory, or a libSQL server). */
export function localDatabaseFile(url: string): string | null {
  if (!url.startsWith("file:")) return null;
  const path = localPath(url);
  return path === ":memory:" || path.includes(":memory:") ? null : path;
}

/** The engine's path for a local URL: `file:x.db` → `x.db` (query ignored), `:memory:` as is. */
function localPath(url: string): string {
  if (url === ":memory:") return url;
  const path = url.slice("file:".length).split("?")[0]!;
  return path === "" ? ":memory:" : path.replace(/^\/\/(localhost)?(?=\/)/, "");
}

/** Cheap reachability probe for /health. */
export async function pingDatabase(db: Database): Promise<void> {
  await db.execute("SELECT 1");
}
