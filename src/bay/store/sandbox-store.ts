/**
 * Persistence of sandboxes. Deleted sandboxes stay as tombstones (deleted_at).
 * The aggregate status is computed in SQL from the row and its current session,
 * so list filters and pagination agree with what GET shows. Every guard comes
 * from the lifecycle table (domain/lifecycle.ts); this file only assembles SQL.
 * It is also the one writer of a sandbox's idle deadline.
 */
import type { InArgs, Row } from "@libsql/client";
import { GUARD, POOL_OWNER, STATUS_SQL, type SandboxStatus } from "../domain/lifecycle.ts";
import type { Fence } from "./idempotency-store.ts";
import type { Database } from "./database.ts";
import { ReadCache } from "./read-cache.ts";
import { num, optNum, optStr, queryOne, str } from "./rows.ts";

export type { SandboxStatus } from "../domain/lifecycle.ts";

/** The current session as joined into a sandbox read (no second query on the hot path). */
export interface CurrentSession {
  id: string;
  status: string;
  endpoint: string | null;
  containerId: string | null;
  secret: string | null;
  leaseExpiresAt: number | null;
}

export interface SandboxRecord {
  id: string;
  owner: string;
  profileId: string;
  workspaceId: string;
  createdAt: number;
  expiresAt: number | null;
  idleExpiresAt: number | null;
  currentSessionId: string | null;
  lastError: string | null;
  expiredAt: number | null;
  deletedAt: number | null;
  /** Computed at read time (see STATUS_SQL). */
  status: SandboxStatus;
  /** The row of `currentSessionId`, read in the same statement; null when there is none. */
  session: CurrentSession | null;
}

export type NewSandbox = Pick<SandboxRecord, "id" | "owner" | "profileId" | "workspaceId" | "createdAt" | "expiresAt">;

/** The owner's live sandbox count, for quota conditions (one `?`: the owner). */
export const LIVE_COUNT = "(SELECT COUNT(*) FROM sandboxes WHERE owner = ? AND deleted_at IS NULL)";

const SELECT = `SELECT s.*, ${STATUS_SQL} AS status, ss.status AS ss_status, ss.endpoint AS ss_endpoint,
    ss.container_id AS ss_container_id, ss.secret AS ss_secret, ss.lease_expires_at AS ss_lease_expires_at
  FROM sandboxes s LEFT JOIN sessions ss ON ss.id = s.current_session_id`;

// Built once: the embedded database keys its prepared statements by the SQL text, and
// a string built per call is hashed again on every lookup.
const FIND_LIVE = `${SELECT} WHERE s.id = :id AND s.owner = :owner AND ${GUARD.live}`;
const GET_ANY = `${SELECT} WHERE s.id = :id`;
/** An idle deadline pushed on (see extendIdleDeadline). */
const EXTEND_IDLE =
  "UPDATE sandboxes SET idle_expires_at = MAX(COALESCE(idle_expires_at, 0), ?) WHERE id = ? AND current_session_id IS NOT NULL";

function toRecord(row: Row): SandboxRecord {
  return {
    id: str(row, "id"),
    owner: str(row, "owner"),
    profileId: str(row, "profile_id"),
    workspaceId: str(row, "workspace_id"),
    createdAt: num(row, "created_at"),
    expiresAt: optNum(row, "expires_at"),
    idleExpiresAt: optNum(row, "idle_expires_at"),
    currentSessionId: optStr(row, "current_session_id"),
    lastError: optStr(row, "last_error"),
    expiredAt: optNum(row, "expired_at"),
    deletedAt: optNum(row, "deleted_at"),
    status: str(row, "status") as SandboxStatus,
    session:
      row.ss_status == null
        ? null
        : {
            id: str(row, "current_session_id"),
            status: str(row, "ss_status"),
            endpoint: optStr(row, "ss_endpoint"),
            containerId: optStr(row, "ss_container_id"),
            secret: optStr(row, "ss_secret"),
            leaseExpiresAt: optNum(row, "ss_lease_expires_at"),
          },
  };
}

export interface ListSandboxesQuery {
  owner: string;
  limit: number;
  /** Exclusive: return ids older (smaller) than this. */
  beforeId?: string | undefined;
  status?: SandboxStatus | undefined;
}

export class SandboxStore {
  /** findLive's answers while the database is unchanged (a sandbox polled with GET reads nothing). */
  private readonly live: ReadCache<SandboxRecord>;
  constructor(private readonly db: Database) {
    this.live = new ReadCache(db);
  }

  /** Statement that inserts a sandbox, for use inside a batch. */
  insertStatement(s: NewSandbox) {
    return {
      sql: `INSERT INTO sandboxes (id, owner, profile_id, workspace_id, created_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?)`,
      args: [s.id, s.owner, s.profileId, s.workspaceId, s.createdAt, s.expiresAt],
    };
  }

  /**
   * Statement that inserts a sandbox only while its owner has fewer than
   * `maxLive` live sandboxes and its workspace row exists (0 rows otherwise).
   * Inside a write batch the count and the insert cannot be split by another
   * create, so concurrent creates never exceed the quota.
   */
  insertWithinQuotaStatement(s: NewSandbox, maxLive: number, fence?: Fence) {
    return {
      sql: `INSERT INTO sandboxes (id, owner, profile_id, workspace_id, created_at, expires_at)
            SELECT ?, ?, ?, ?, ?, ? WHERE ${LIVE_COUNT} < ?
              AND EXISTS (SELECT 1 FROM workspaces WHERE id = ? AND deleted_at IS NULL)${fence ? ` AND ${fence.sql}` : ""}`,
      args: [s.id, s.owner, s.profileId, s.workspaceId, s.createdAt, s.expiresAt, s.owner, maxLive, s.workspaceId, ...(fence?.args ?? [])],
    };
  }

  /**
   * Statement that inserts a sandbox on an existing external workspace, only if
   * that workspace is still live and this owner's (0 rows otherwise): the check
   * and the insert are one statement, so a workspace delete cannot slip between.
   */
  insertOnExternalWorkspaceStatement(s: NewSandbox, maxLive: number, fence?: Fence) {
    return {
      sql: `INSERT INTO sandboxes (id, owner, profile_id, workspace_id, created_at, expires_at)
            SELECT ?, ?, ?, ?, ?, ? WHERE ${LIVE_COUNT} < ? AND EXISTS (
              SELECT 1 FROM workspaces WHERE id = ? AND owner = ? AND managed = 0 AND deleted_at IS NULL)${fence ? ` AND ${fence.sql}` : ""}`,
      args: [
        s.id,
        s.owner,
        s.profileId,
        s.workspaceId,
        s.createdAt,
        s.expiresAt,
        s.owner,
        maxLive,
        s.workspaceId,
        s.owner,
        ...(fence?.args ?? []),
      ],
    };
  }

  /** A live (not deleted) sandbox of this owner, or null. */
  async findLive(owner: string, id: string, now = Date.now()): Promise<SandboxRecord | null> {
    return this.live.get(
      // The owner's length first: owners (a JWT subject) and ids (the path) may hold any character, a newline too.
      `${owner.length}:${owner}\n${id}`,
      async () => {
        const row = await queryOne(this.db, { sql: FIND_LIVE, args: { id, owner, now } });
        return row ? toRecord(row) : null;
      },
      // The status depends on the time only through the TTL (STATUS_SQL): until it passes, what was read holds.
      (sb) => sb.status === "expired" || sb.expiresAt === null || sb.expiresAt > now,
    );
  }

  /** A sandbox by id regardless of owner or tombstone (internal use: reaper, reconcile). */
  async get(id: string, now = Date.now()): Promise<SandboxRecord | null> {
    const row = await queryOne(this.db, { sql: GET_ANY, args: { id, now } });
    return row ? toRecord(row) : null;
  }

  /** One page, newest first, plus whether more rows follow. */
  async list(q: ListSandboxesQuery, now = Date.now()): Promise<{ items: SandboxRecord[]; more: boolean }> {
    const rs = await this.db.execute({
      sql: `SELECT * FROM (${SELECT} WHERE s.owner = :owner AND ${GUARD.live}
              AND (:before IS NULL OR s.id < :before)) AS t
            WHERE (:status IS NULL OR t.status = :status)
            ORDER BY t.id DESC LIMIT :lim`,
      args: { owner: q.owner, before: q.beforeId ?? null, status: q.status ?? null, lim: q.limit + 1, now },
    });
    const items = rs.rows.map(toRecord);
    const more = items.length > q.limit;
    return { items: items.slice(0, q.limit), more };
  }

  /** Live sandboxes of an owner (for quotas). */
  async countLive(owner: string): Promise<number> {
    const rs = await this.db.execute({
      sql: "SELECT COUNT(*) AS n FROM sandboxes WHERE owner = ? AND deleted_at IS NULL",
      args: [owner],
    });
    return num(rs.rows[0]!, "n");
  }

  /**
   * Makes `sessionId` the sandbox's current session when it has none (compare-and-set: only one
   * claimer wins), unless the sandbox is deleted or may no longer start. The idle
   * deadline is armed only once the session is ready.
   */
  async claimCurrentSession(id: string, sessionId: string, now: number): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `UPDATE sandboxes AS s SET current_session_id = :sess, idle_expires_at = NULL
            WHERE s.id = :id AND ${GUARD.live} AND s.current_session_id IS NULL AND ${GUARD.startable}`,
      args: { id, sess: sessionId, now },
    });
    return rs.rowsAffected === 1;
  }

  /** Clears the current session if it is still `sessionId` (compare-and-set); an expired sandbox can still be released. */
  async releaseCurrentSession(id: string, sessionId: string): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `UPDATE sandboxes SET current_session_id = NULL, idle_expires_at = NULL
            WHERE id = :id AND deleted_at IS NULL AND current_session_id = :sess`,
      args: { id, sess: sessionId },
    });
    return rs.rowsAffected === 1;
  }

  /**
   * Statement, for the batch that marks `sessionId` ready: arms the idle deadline
   * and clears the last start error, only if that session is still the current one
   * and became ready in the same batch.
   */
  armIdleDeadlineStatement(sessionId: string, idleExpiresAt: number) {
    return {
      sql: `UPDATE sandboxes SET idle_expires_at = :idle, last_error = NULL
            WHERE current_session_id = :sess AND EXISTS (SELECT 1 FROM sessions WHERE id = :sess AND status = 'ready')`,
      args: { sess: sessionId, idle: idleExpiresAt },
    };
  }

  /**
   * Idle reclaim's compare-and-set: clears the current session only if it is still this
   * ready session and its idle deadline is still past (a call or keepalive since
   * the read moved it). Of several reapers, exactly one wins.
   */
  async releaseIdle(id: string, sessionId: string, now: number): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `UPDATE sandboxes AS s SET current_session_id = NULL, idle_expires_at = NULL
            WHERE s.id = :id AND ${GUARD.live} AND s.current_session_id = :sess AND ${GUARD.idlePastDeadline}
              AND EXISTS (SELECT 1 FROM sessions WHERE id = :sess AND status = 'ready')`,
      args: { id, sess: sessionId, now },
    });
    return rs.rowsAffected === 1;
  }

  /** Records the outcome of the last start attempt (null clears it). */
  async setLastError(id: string, error: string | null): Promise<void> {
    await this.db.execute({ sql: "UPDATE sandboxes SET last_error = ? WHERE id = ?", args: [error, id] });
  }

  /**
   * Covers a call that may outlast the session's idle deadline until `until`: no
   * reaper of any replica reclaims the session while the row is there and not past.
   * Deleted by `endCallCover` when the call ends (or past `until`, by the reaper).
   */
  async coverCall(id: string, sandboxId: string, until: number): Promise<void> {
    await this.db.execute({ sql: "INSERT INTO call_covers (id, sandbox_id, until) VALUES (?, ?, ?)", args: [id, sandboxId, until] });
  }

  /** Moves a live call's cover on (never back): its lease, renewed while the call runs. */
  async renewCallCover(id: string, until: number): Promise<void> {
    await this.db.execute({ sql: "UPDATE call_covers SET until = MAX(until, ?) WHERE id = ?", args: [until, id] });
  }

  /** The call is over: its cover goes, and the idle deadline, when given, is set (one transaction). */
  async endCallCover(id: string, sandboxId: string, idleExpiresAt: number | null): Promise<void> {
    await this.db.batch(
      [
        ["DELETE FROM call_covers WHERE id = ?", [id]],
        ...(idleExpiresAt === null ? [] : [[EXTEND_IDLE, [idleExpiresAt, sandboxId]] as [string, InArgs]]),
      ],
      "write",
    );
  }

  /** Covers whose time is up (their call's replica died before it could delete them). */
  async purgeCallCovers(now: number): Promise<number> {
    return (await this.db.execute({ sql: "DELETE FROM call_covers WHERE until <= ?", args: [now] })).rowsAffected;
  }

  /**
   * Pushes the idle deadline of a sandbox that has a session (a no-op once it is
   * stopped): after a call, a keepalive, a stream's renewal. Never backwards, so two
   * writes that land out of order (a libSQL server) cannot leave the earlier one.
   */
  async extendIdleDeadline(id: string, idleExpiresAt: number): Promise<void> {
    await this.db.execute({ sql: EXTEND_IDLE, args: [idleExpiresAt, id] });
  }

  async setExpiresAt(id: string, expiresAt: number | null): Promise<void> {
    await this.db.execute({ sql: "UPDATE sandboxes SET expires_at = ? WHERE id = ?", args: [expiresAt, id] });
  }

  /** Marks a sandbox expired once (the first caller wins); true if this call did it. */
  async markExpired(id: string, now: number): Promise<boolean> {
    const rs = await this.db.execute({
      sql: "UPDATE sandboxes SET expired_at = ?, idle_expires_at = NULL WHERE id = ? AND expired_at IS NULL AND deleted_at IS NULL",
      args: [now, id],
    });
    return rs.rowsAffected === 1;
  }

  /**
   * Deletes a sandbox in one transaction: ends its current session (so a start
   * still in flight fails its markReady and removes its own container),
   * tombstones its workspace if that is managed, then the sandbox itself. A
   * crash can no longer leave a deleted sandbox whose managed workspace stays
   * live forever. True if this call did it.
   *
   * `poolMemberOnly`: only while the sandbox is still an unclaimed warm-pool
   * member, so retiring a member and an owner claiming it never both succeed.
   */
  async tombstone(id: string, now: number, opts: { poolMemberOnly?: boolean } = {}): Promise<boolean> {
    const guard = opts.poolMemberOnly ? ` AND owner = '${POOL_OWNER}'` : "";
    const live = `SELECT {col} FROM sandboxes WHERE id = :id AND deleted_at IS NULL${guard}`;
    const results = await this.db.batch(
      [
        {
          sql: `UPDATE sessions SET status = 'stopped', ended_at = :now, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = (${live.replace("{col}", "current_session_id")}) AND ${GUARD.sessionActive}`,
          args: { id, now },
        },
        {
          sql: `UPDATE workspaces SET deleted_at = :now
                WHERE id = (${live.replace("{col}", "workspace_id")}) AND managed = 1 AND deleted_at IS NULL`,
          args: { id, now },
        },
        {
          sql: `UPDATE sandboxes SET deleted_at = :now, current_session_id = NULL, idle_expires_at = NULL
                WHERE id = :id AND deleted_at IS NULL${guard}`,
          args: { id, now },
        },
      ],
      "write",
    );
    return results[2]?.rowsAffected === 1;
  }

  /** Live sandboxes whose TTL has passed but are not yet marked expired. */
  async listNewlyExpired(now: number, limit = 100): Promise<SandboxRecord[]> {
    const rs = await this.db.execute({
      sql: `${SELECT} WHERE ${GUARD.live} AND ${GUARD.newlyExpired} LIMIT :lim`,
      args: { now, lim: limit },
    });
    return rs.rows.map(toRecord);
  }

  /** Live sandboxes with a session whose idle deadline has passed. */
  async listIdlePastDeadline(now: number, limit = 100): Promise<SandboxRecord[]> {
    const rs = await this.db.execute({
      sql: `${SELECT} WHERE ${GUARD.live} AND ${GUARD.idlePastDeadline} LIMIT :lim`,
      args: { now, lim: limit },
    });
    return rs.rows.map(toRecord);
  }

  /** Sessions that are the current one of a live, unexpired sandbox (for reconcile). */
  async liveSessionIds(now: number): Promise<Set<string>> {
    const rs = await this.db.execute({
      sql: `SELECT current_session_id FROM sandboxes s WHERE ${GUARD.live} AND s.current_session_id IS NOT NULL AND ${GUARD.startable}`,
      args: { now },
    });
    return new Set(rs.rows.map((r) => str(r, "current_session_id")));
  }

  /** Managed workspaces still live under an expired (not deleted) sandbox: the `delete` policy's backlog. */
  async listExpiredManagedWorkspaces(limit = 100): Promise<Array<{ sandboxId: string; workspaceId: string; volumeName: string }>> {
    const rs = await this.db.execute({
      sql: `SELECT s.id AS sandbox_id, w.id AS workspace_id, w.volume_name FROM sandboxes s JOIN workspaces w ON w.id = s.workspace_id
            WHERE s.expired_at IS NOT NULL AND s.deleted_at IS NULL AND w.managed = 1 AND w.deleted_at IS NULL LIMIT ?`,
      args: [limit],
    });
    return rs.rows.map((r) => ({
      sandboxId: str(r, "sandbox_id"),
      workspaceId: str(r, "workspace_id"),
      volumeName: str(r, "volume_name"),
    }));
  }
}
