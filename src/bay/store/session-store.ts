/**
 * Persistence of sessions (one container run of a sandbox). A session in
 * `starting` carries a lease (owner + expiry): the Bay process that holds it is
 * creating the container; if that process dies, the lease lapses and any
 * replica may clean up and take over.
 */
import type { Row } from "@libsql/client";
import type { Database } from "./database.ts";
import { num, optNum, optStr, str } from "./rows.ts";

export type SessionStatus = "starting" | "ready" | "failed" | "stopped";

export interface SessionRecord {
  id: string;
  sandboxId: string;
  status: SessionStatus;
  containerId: string | null;
  endpoint: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  error: string | null;
  createdAt: number;
  readyAt: number | null;
  endedAt: number | null;
}

function toRecord(row: Row): SessionRecord {
  return {
    id: str(row, "id"),
    sandboxId: str(row, "sandbox_id"),
    status: str(row, "status") as SessionStatus,
    containerId: optStr(row, "container_id"),
    endpoint: optStr(row, "endpoint"),
    leaseOwner: optStr(row, "lease_owner"),
    leaseExpiresAt: optNum(row, "lease_expires_at"),
    error: optStr(row, "error"),
    createdAt: num(row, "created_at"),
    readyAt: optNum(row, "ready_at"),
    endedAt: optNum(row, "ended_at"),
  };
}

export class SessionStore {
  constructor(private readonly db: Database) {}

  /** Inserts a `starting` session leased to `leaseOwner` until `leaseExpiresAt`. */
  async insertStarting(s: { id: string; sandboxId: string; leaseOwner: string; leaseExpiresAt: number; now: number }): Promise<void> {
    await this.db.execute({
      sql: `INSERT INTO sessions (id, sandbox_id, status, lease_owner, lease_expires_at, created_at)
            VALUES (?, ?, 'starting', ?, ?, ?)`,
      args: [s.id, s.sandboxId, s.leaseOwner, s.leaseExpiresAt, s.now],
    });
  }

  async get(id: string): Promise<SessionRecord | null> {
    const rs = await this.db.execute({ sql: "SELECT * FROM sessions WHERE id = ?", args: [id] });
    return rs.rows[0] ? toRecord(rs.rows[0]) : null;
  }

  /**
   * Records the container of a starting session, only while `leaseOwner` still
   * holds its lease: false means the start was taken over or ended meanwhile.
   */
  async setContainer(id: string, containerId: string, leaseOwner: string): Promise<boolean> {
    const rs = await this.db.execute({
      sql: "UPDATE sessions SET container_id = ? WHERE id = ? AND status = 'starting' AND lease_owner = ?",
      args: [containerId, id, leaseOwner],
    });
    return rs.rowsAffected === 1;
  }

  /**
   * starting → ready, and the sandbox's idle deadline and last error set, in one
   * transaction. Only while the session is still its live, unexpired sandbox's
   * current one: false if a stop, delete, expiry or takeover came first.
   */
  async markReady(id: string, endpoint: string, now: number, idleExpiresAt: number): Promise<boolean> {
    const results = await this.db.batch(
      [
        {
          sql: `UPDATE sessions SET status = 'ready', endpoint = :endpoint, ready_at = :now, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = :id AND status = 'starting' AND EXISTS (
                  SELECT 1 FROM sandboxes s WHERE s.id = sessions.sandbox_id AND s.current_session_id = sessions.id
                    AND s.deleted_at IS NULL AND s.expired_at IS NULL)`,
          args: { id, endpoint, now },
        },
        {
          sql: `UPDATE sandboxes SET idle_expires_at = :idle, last_error = NULL
                WHERE current_session_id = :id AND EXISTS (SELECT 1 FROM sessions WHERE id = :id AND status = 'ready')`,
          args: { id, idle: idleExpiresAt },
        },
      ],
      "write",
    );
    return results[0]?.rowsAffected === 1;
  }

  /** Ends a session (failed or stopped) unless it has already ended. */
  async markEnded(id: string, status: "failed" | "stopped", now: number, error: string | null = null): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `UPDATE sessions SET status = ?, error = COALESCE(?, error), ended_at = ?, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = ? AND status IN ('starting', 'ready')`,
      args: [status, error, now, id],
    });
    return rs.rowsAffected === 1;
  }

  /** Extends the lease of a starting session held by `leaseOwner`; false when it is no longer held. */
  async renewLease(id: string, leaseOwner: string, until: number): Promise<boolean> {
    const rs = await this.db.execute({
      sql: "UPDATE sessions SET lease_expires_at = ? WHERE id = ? AND status = 'starting' AND lease_owner = ?",
      args: [until, id, leaseOwner],
    });
    return rs.rowsAffected === 1;
  }

  /** Starting sessions whose lease lapsed: their starter died mid-way. */
  async listStaleStarting(now: number): Promise<SessionRecord[]> {
    const rs = await this.db.execute({
      sql: "SELECT * FROM sessions WHERE status = 'starting' AND lease_expires_at IS NOT NULL AND lease_expires_at < ?",
      args: [now],
    });
    return rs.rows.map(toRecord);
  }

  /** Sessions that are running or starting. */
  async listActive(): Promise<SessionRecord[]> {
    const rs = await this.db.execute("SELECT * FROM sessions WHERE status IN ('starting', 'ready')");
    return rs.rows.map(toRecord);
  }
}
