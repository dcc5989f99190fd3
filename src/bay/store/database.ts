/**
 * Opens the libSQL database (embedded file, :memory:, or a libSQL server URL)
 * and applies pending migrations inside one write transaction, so several Bay
 * replicas starting at once apply each migration exactly once.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createClient, type Client } from "@libsql/client";
import { MIGRATIONS, type Migration } from "./migrations.ts";

export type Database = Client;

export interface OpenDatabaseOptions {
  url: string;
  authToken?: string | undefined;
  migrations?: Migration[];
}

/** Opens the database and brings its schema up to date. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const url = opts.url;
  if (url.startsWith("file:")) {
    const path = url.slice("file:".length).split("?")[0]!;
    if (path && path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  }
  const db = createClient({ url, authToken: opts.authToken });
  if (url.startsWith("file:") || url === ":memory:") {
    // WAL lets readers proceed while one writer holds the lock; busy_timeout makes
    // concurrent writers (several Bay processes on one file) wait instead of failing.
    await db.execute("PRAGMA busy_timeout = 5000");
    if (url !== ":memory:" && !url.includes(":memory:")) await db.execute("PRAGMA journal_mode = WAL");
  }
  await db.execute("PRAGMA foreign_keys = ON");
  await migrate(db, opts.migrations ?? MIGRATIONS);
  return db;
}

/** Applies migrations newer than the recorded version; returns the versions applied. */
export async function migrate(db: Database, migrations: Migration[]): Promise<number[]> {
  await db.execute(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
  );
  const applied: number[] = [];
  const tx = await db.transaction("write");
  try {
    const rs = await tx.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations");
    const current = Number(rs.rows[0]?.v ?? 0);
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (m.version <= current) continue;
      for (const sql of m.statements) await tx.execute(sql);
      await tx.execute({
        sql: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        args: [m.version, m.name, Date.now()],
      });
      applied.push(m.version);
    }
    await tx.commit();
  } finally {
    tx.close();
  }
  return applied;
}

/** Cheap reachability probe for /health. */
export async function pingDatabase(db: Database): Promise<void> {
  await db.execute("SELECT 1");
}
