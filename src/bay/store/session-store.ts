/**
 * Persistence of sessions (one container run of a sandbox). A session in
 * `starting` carries a lease (owner + expiry): the Bay process that holds it is
 * creating the container; if that process dies, the lease lapses and any
 * replica may clean up and take over.
 */
import type { Row } from "@libsql/client";
import { GUARD, type SessionEnd, type SessionState } from "../domain/lifecycle.ts";
import type { Database } from "./database.ts";
import { num, optNum, optStr, str } from "./rows.ts";

export type SessionStatus = SessionState;

export interface SessionRecord {
  id: string;
  sandboxId: string;
  status: SessionStatus;
  containerId: string | null;
  endpoint: string | null;
  /** The secret this session's Ship requires (minted at insert; null for sessions older than the trust boundary). */
  secret: string | null;
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
    secret: optStr(row, "secret"),
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

  /**
   * Inserts a `starting` session leased to `leaseOwner` until `leaseExpiresAt`,
   * with its Ship's secret, only while the caps allow one more: fewer than
   * `maxActive` sessions running or starting in all, and fewer than
   * `maxStartingPerOwner` starting for the sandbox's owner. One statement, so
   * concurrent starts (on any replica) never exceed them. False when a cap is full.
   */
  async insertStarting(s: {
    id: string;
    sandboxId: string;
    secret: string;
    leaseOwner: string;
    leaseExpiresAt: number;
    now: number;
    maxActive?: number;
    maxStartingPerOwner?: number;
  }): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `INSERT INTO sessions (id, sandbox_id, status, secret, lease_owner, lease_expires_at, created_at)
            SELECT :id, :sandbox, 'starting', :secret, :lease_owner, :lease, :now
            WHERE (SELECT COUNT(*) FROM sessions WHERE ${GUARD.sessionActive}) < :max_active
              AND (SELECT COUNT(*) FROM sessions x JOIN sandboxes s ON s.id = x.sandbox_id
                   WHERE x.status = 'starting' AND s.owner = (SELECT owner FROM sandboxes WHERE id = :sandbox)) < :max_starting`,
      args: {
        id: s.id,
        sandbox: s.sandboxId,
        secret: s.secret,
        lease_owner: s.leaseOwner,
        lease: s.leaseExpiresAt,
        now: s.now,
        max_active: s.maxActive ?? Number.MAX_SAFE_INTEGER,
        max_starting: s.maxStartingPerOwner ?? Number.MAX_SAFE_INTEGER,
      },
    });
    return rs.rowsAffected === 1;
  }

  /** Sessions running or starting in all, and starting for this sandbox's owner (to say which cap is full). */
  async activeCounts(sandboxId: string): Promise<{ active: number; startingForOwner: number }> {
    const rs = await this.db.execute({
      sql: `SELECT (SELECT COUNT(*) FROM sessions WHERE ${GUARD.sessionActive}) AS active,
              (SELECT COUNT(*) FROM sessions x JOIN sandboxes s ON s.id = x.sandbox_id
               WHERE x.status = 'starting' AND s.owner = (SELECT owner FROM sandboxes WHERE id = :sandbox)) AS starting`,
      args: { sandbox: sandboxId },
    });
    const row = rs.rows[0]!;
    return { active: num(row, "active"), startingForOwner: num(row, "starting") };
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
   * Statement, for the batch that also arms the sandbox's idle deadline:
   * starting → ready, only while the session is still its live, unexpired
   * sandbox's current one (a stop, delete, expiry or takeover came first otherwise).
   */
  markReadyStatement(id: string, endpoint: string, now: number) {
    return {
      sql: `UPDATE sessions SET status = 'ready', endpoint = :endpoint, ready_at = :now, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = :id AND status = 'starting' AND EXISTS (
              SELECT 1 FROM sandboxes s WHERE s.id = sessions.sandbox_id AND s.current_session_id = sessions.id
                AND ${GUARD.live} AND s.expired_at IS NULL)`,
      args: { id, endpoint, now },
    };
  }

  /** Ends a session (failed or stopped) unless it has already ended; true when this call ended it. */
  async end(id: string, outcome: SessionEnd, now: number, reason: string | null = null): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `UPDATE sessions SET status = ?, error = COALESCE(?, error), ended_at = ?, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = ? AND ${GUARD.sessionActive}`,
      args: [outcome, reason, now, id],
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
    const rs = await this.db.execute(`SELECT * FROM sessions WHERE ${GUARD.sessionActive}`);
    return rs.rows.map(toRecord);
  }
}
