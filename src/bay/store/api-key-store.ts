/** Persistence of API keys. Only a SHA-256 hash of each key is stored. */
import type { Row } from "@libsql/client";
import type { Database } from "./database.ts";
import { num, optNum, optStr, queryOne, str } from "./rows.ts";

export interface ApiKeyRecord {
  id: string;
  owner: string;
  name: string | null;
  prefix: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

function toRecord(row: Row): ApiKeyRecord {
  return {
    id: str(row, "id"),
    owner: str(row, "owner"),
    name: optStr(row, "name"),
    prefix: str(row, "prefix"),
    createdAt: num(row, "created_at"),
    lastUsedAt: optNum(row, "last_used_at"),
    revokedAt: optNum(row, "revoked_at"),
  };
}

export class ApiKeyStore {
  constructor(private readonly db: Database) {}

  async insert(k: { id: string; owner: string; name: string | null; keyHash: string; prefix: string; now: number }): Promise<void> {
    await this.db.execute({
      sql: "INSERT INTO api_keys (id, owner, name, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      args: [k.id, k.owner, k.name, k.keyHash, k.prefix, k.now],
    });
  }

  /** The unrevoked key with this hash, or null. */
  async findActiveByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    const row = await queryOne(this.db, { sql: "SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", args: [keyHash] });
    return row ? toRecord(row) : null;
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const rs = await this.db.execute({ sql: "SELECT * FROM api_keys WHERE id = ?", args: [id] });
    return rs.rows[0] ? toRecord(rs.rows[0]) : null;
  }

  async list(owner?: string): Promise<ApiKeyRecord[]> {
    const rs = await this.db.execute({
      sql: "SELECT * FROM api_keys WHERE (? IS NULL OR owner = ?) ORDER BY created_at, id",
      args: [owner ?? null, owner ?? null],
    });
    return rs.rows.map(toRecord);
  }

  /** Revokes a key by id; false when no such unrevoked key exists. */
  async revoke(id: string, now: number): Promise<boolean> {
    const rs = await this.db.execute({
      sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
      args: [now, id],
    });
    return rs.rowsAffected === 1;
  }

  async touch(id: string, now: number): Promise<void> {
    await this.db.execute({ sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ?", args: [now, id] });
  }
}
