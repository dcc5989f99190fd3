/** Small helpers for reading libSQL rows without `any`. */
import type { InStatement, Row } from "@libsql/client";
import type { Database } from "./database.ts";
import { LocalDatabase } from "./local-database.ts";

/** The first row of a query or null; on an embedded database, without collecting the rest (one engine call). */
export async function queryOne(db: Database, stmt: Exclude<InStatement, string>): Promise<Row | null> {
  if (db instanceof LocalDatabase) return db.one(stmt);
  return (await db.execute(stmt)).rows[0] ?? null;
}

export const str = (row: Row, col: string): string => String(row[col]);
export const optStr = (row: Row, col: string): string | null => (row[col] == null ? null : String(row[col]));
export const num = (row: Row, col: string): number => Number(row[col]);
export const optNum = (row: Row, col: string): number | null => (row[col] == null ? null : Number(row[col]));

/** Opaque cursors: base64url of the last id of a page. */
export const encodeCursor = (id: string): string => Buffer.from(id, "utf8").toString("base64url");
export function decodeCursor(cursor: string): string | null {
  const id = Buffer.from(cursor, "base64url").toString("utf8");
  return /^[a-z]+-[0-9a-z]{1,64}$/.test(id) ? id : null;
}
