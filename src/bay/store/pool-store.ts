/**
 * Persistence of the warm pool. A member is an ordinary sandbox row owned by
 * `POOL_OWNER` with a managed workspace and a session (domain/lifecycle.ts, "The
 * warm pool"), so the session machinery, reconcile and the reaper treat it like
 * any sandbox. This store holds the pool's own statements: making a member (its
 * three rows in one transaction, only while the pool and Bay's session cap have
 * room), claiming one (one compare-and-set statement), listing members, and
 * retiring one. Every guard comes from the lifecycle table.
 */
import type { InStatement, Row } from "@libsql/client";
import { GUARD, POOL_GUARD, POOL_OWNER, POOL_STATE_SQL, type PoolMemberState } from "../domain/lifecycle.ts";
import type { Database } from "./database.ts";
import { num, optStr, str } from "./rows.ts";

/** A live member as the pool manager needs it. */
export interface PoolMember {
  id: string;
  profileId: string;
  workspaceId: string;
  createdAt: number;
  sessionId: string | null;
  containerId: string | null;
  state: Extract<PoolMemberState, "warming" | "warm" | "stale">;
  /** What it was made from (pool-fingerprint.ts); null for a member made before Bay recorded it. */
  fingerprint: string | null;
}

/** The rows of a new member: its sandbox, managed workspace and starting (leased) session. */
export interface NewPoolMember {
  sandboxId: string;
  workspaceId: string;
  sessionId: string;
  profileId: string;
  /** What its container is made from (pool-fingerprint.ts). */
  fingerprint: string;
  secret: string;
  sizeLimitMb: number;
  leaseOwner: string;
  leaseExpiresAt: number;
  now: number;
}

/** What a claim writes on the member it takes. */
export interface PoolClaim {
  owner: string;
  profileId: string;
  /** Random, unique per claim: marks the member for the rest of the claim's transaction. */
  token: string;
  now: number;
  /** Members created at or before this are too old to hand out. */
  oldest: number;
  /** Only a member made from this is handed out (what the profile makes now). */
  fingerprint: string;
  expiresAt: number | null;
  idleExpiresAt: number;
  maxSandboxes: number;
  maxWorkspaces: number;
  /** A condition the claim also needs (named arguments): its Idempotency-Key claim still held (heldFenceNamed). */
  fence?: { sql: string; args: Record<string, string> };
}

function toMember(row: Row): PoolMember {
  return {
    id: str(row, "id"),
    profileId: str(row, "profile_id"),
    workspaceId: str(row, "workspace_id"),
    createdAt: num(row, "created_at"),
    sessionId: optStr(row, "ss_id"),
    containerId: optStr(row, "container_id"),
    state: str(row, "pool_state") as PoolMember["state"],
    fingerprint: optStr(row, "pool_fingerprint"),
  };
}

/** A configuration's live members of a profile: each configuration a replica runs keeps its own pool. */
const MEMBER_COUNT = `(SELECT COUNT(*) FROM sandboxes WHERE owner = '${POOL_OWNER}' AND profile_id = :profile
  AND pool_fingerprint = :fingerprint AND deleted_at IS NULL)`;
/**
 * A profile's live members of every configuration: at most `:max_all` (the sizes of the
 * configurations replicas run, and one size more), so configurations that came and went
 * (crashed replicas' members, until they are retired) hold few of Bay's sessions (review
 * s98 L1) and none starves another that runs (s99 L3).
 */
const ALL_MEMBERS_COUNT = `(SELECT COUNT(*) FROM sandboxes WHERE owner = '${POOL_OWNER}' AND profile_id = :profile AND deleted_at IS NULL)`;
/**
 * Bay's live members of every profile and configuration: at most `:max_active - 1` with the one
 * made (fewer before it), so however many replicas of differing configurations fill their pools,
 * owners keep the room under the session cap that each replica's own check at start promised
 * (config.ts warmPoolRoomProblem; review s102).
 */
const POOL_MEMBERS_COUNT = `(SELECT COUNT(*) FROM sandboxes WHERE owner = '${POOL_OWNER}' AND deleted_at IS NULL)`;
/** The database's clock in ms (one for every replica). */
const DB_NOW_MS = "(CAST(strftime('%s', 'now') AS INTEGER) * 1000)";

export class PoolStore {
  constructor(private readonly db: Database) {}

  /**
   * Makes a member in one transaction: its workspace, its sandbox (already
   * pointing at its session) and its `starting` session leased to the caller,
   * only while the profile has fewer than `size` live members made the same way (across replicas)
   * and `maxAll` members of any configuration, and Bay runs fewer than `maxActive` sessions. A member is never without a
   * session, so one with none has ended and may be retired. False when full.
   */
  async insertMember(m: NewPoolMember, size: number, maxActive: number, maxAll: number): Promise<boolean> {
    const results = await this.db.batch(
      [
        {
          sql: `INSERT INTO workspaces (id, owner, managed, volume_name, size_limit_mb, created_at)
                SELECT :ws, '${POOL_OWNER}', 1, :ws, :size_mb, :now
                WHERE ${MEMBER_COUNT} < :size AND ${ALL_MEMBERS_COUNT} < :max_all AND ${POOL_MEMBERS_COUNT} < :max_active - 1
                  AND (SELECT COUNT(*) FROM sessions WHERE ${GUARD.sessionActive}) < :max_active`,
          args: {
            ws: m.workspaceId,
            size_mb: m.sizeLimitMb,
            now: m.now,
            profile: m.profileId,
            fingerprint: m.fingerprint,
            size,
            max_all: maxAll,
            max_active: maxActive,
          },
        },
        {
          sql: `INSERT INTO sandboxes (id, owner, profile_id, workspace_id, created_at, expires_at, current_session_id, pool_fingerprint)
                SELECT :id, '${POOL_OWNER}', :profile, :ws, :now, NULL, :sess, :fingerprint WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = :ws)`,
          args: { id: m.sandboxId, profile: m.profileId, ws: m.workspaceId, now: m.now, sess: m.sessionId, fingerprint: m.fingerprint },
        },
        {
          sql: `INSERT INTO sessions (id, sandbox_id, status, secret, lease_owner, lease_expires_at, created_at)
                SELECT :sess, :id, 'starting', :secret, :lease_owner, :lease, :now WHERE EXISTS (SELECT 1 FROM sandboxes WHERE id = :id)`,
          args: { sess: m.sessionId, id: m.sandboxId, secret: m.secret, lease_owner: m.leaseOwner, lease: m.leaseExpiresAt, now: m.now },
        },
      ],
      "write",
    );
    return results[2]?.rowsAffected === 1;
  }

  /**
   * Claims the oldest claimable member of a profile for `owner`, in one
   * transaction whose first statement is the claim itself: a single UPDATE that
   * picks a member and sets its owner only while it is still unowned and live
   * and the owner is under both quotas. Of any number of concurrent claimers on
   * any number of replicas, each member goes to exactly one. The statements that
   * follow move the workspace to the owner and, under an Idempotency-Key, record
   * the sandbox on the key's claim. Returns the sandbox id, or null (no member,
   * or a quota is full: the caller's lazy path answers that).
   */
  async claim(c: PoolClaim, attach?: (token: string) => InStatement): Promise<string | null> {
    const statements: InStatement[] = [
      {
        sql: `UPDATE sandboxes SET owner = :owner, created_at = :now, expires_at = :expires, idle_expires_at = :idle,
                last_error = NULL, claim_token = :token
              WHERE id = (SELECT s.id FROM sandboxes s JOIN sessions ss ON ss.id = s.current_session_id
                          WHERE ${POOL_GUARD.claimable} AND s.profile_id = :profile ORDER BY s.created_at, s.id LIMIT 1)
                AND owner = '${POOL_OWNER}' AND deleted_at IS NULL
                AND (SELECT COUNT(*) FROM sandboxes WHERE owner = :owner AND deleted_at IS NULL) < :max_sandboxes
                AND (SELECT COUNT(*) FROM workspaces WHERE owner = :owner AND deleted_at IS NULL) < :max_workspaces
                ${c.fence ? `AND ${c.fence.sql}` : ""}
              RETURNING id`,
        args: {
          owner: c.owner,
          now: c.now,
          expires: c.expiresAt,
          idle: c.idleExpiresAt,
          token: c.token,
          oldest: c.oldest,
          fingerprint: c.fingerprint,
          profile: c.profileId,
          max_sandboxes: c.maxSandboxes,
          max_workspaces: c.maxWorkspaces,
          ...c.fence?.args,
        },
      },
      {
        sql: `UPDATE workspaces SET owner = :owner WHERE owner = '${POOL_OWNER}'
                AND id = (SELECT workspace_id FROM sandboxes WHERE claim_token = :token)`,
        args: { owner: c.owner, token: c.token },
      },
      ...(attach ? [attach(c.token)] : []),
      { sql: "UPDATE sandboxes SET claim_token = NULL WHERE claim_token = :token", args: { token: c.token } },
    ];
    const [claimed] = await this.db.batch(statements, "write");
    const row = claimed?.rows[0];
    return row ? str(row, "id") : null;
  }

  /**
   * Marks what `replica` makes now for each pooled profile it could read (its fingerprint
   * and size), leaves its marks of the profiles in `keep` as they are (their image could not
   * be read: the marks age out unless read again; review s99 L2), and forgets its others.
   * Answers the configurations some replica marked within `ttlMs`, each with the largest
   * size marked for it (`configKey` → size), deleting older marks. Times are the database's
   * clock, one for every replica however theirs drift (review s98 L2).
   */
  async markConfigs(
    replica: string,
    configs: Array<{ profileId: string; fingerprint: string; size: number }>,
    keep: string[],
    ttlMs: number,
  ): Promise<Map<string, number>> {
    const results = await this.db.batch(
      [
        {
          sql: `DELETE FROM pool_configs WHERE seen_at < ${DB_NOW_MS} - :ttl
                  OR (replica_id = :replica AND profile_id NOT IN (SELECT value FROM json_each(:keep)))`,
          args: { ttl: ttlMs, replica, keep: JSON.stringify(keep) },
        },
        ...configs.map((c) => ({
          sql: `INSERT INTO pool_configs (replica_id, profile_id, fingerprint, size, seen_at)
                VALUES (:replica, :profile, :fingerprint, :size, ${DB_NOW_MS})`,
          args: { replica, profile: c.profileId, fingerprint: c.fingerprint, size: c.size },
        })),
        { sql: "SELECT profile_id, fingerprint, MAX(size) AS size FROM pool_configs GROUP BY profile_id, fingerprint", args: {} },
      ],
      "write",
    );
    const rows = results[results.length - 1]?.rows ?? [];
    return new Map(rows.map((r) => [configKey(str(r, "profile_id"), str(r, "fingerprint")), num(r, "size")]));
  }

  /** Marks `replica`'s configurations of `profiles` seen again (at the end of a long pass). */
  async touchConfigs(replica: string, profiles: string[]): Promise<void> {
    await this.db.execute({
      sql: `UPDATE pool_configs SET seen_at = ${DB_NOW_MS} WHERE replica_id = :replica AND profile_id IN (SELECT value FROM json_each(:profiles))`,
      args: { replica, profiles: JSON.stringify(profiles) },
    });
  }

  /** A replica that stops making members: its marks go, so its members are retired at once, not after the marks age. */
  async forgetConfigs(replica: string): Promise<void> {
    await this.db.execute({ sql: "DELETE FROM pool_configs WHERE replica_id = :replica", args: { replica } });
  }

  /** Every live, unclaimed member with its state (the pool is small: no paging). */
  async members(): Promise<PoolMember[]> {
    const rs = await this.db.execute(
      `SELECT s.id, s.profile_id, s.workspace_id, s.created_at, s.pool_fingerprint, ss.id AS ss_id, ss.container_id, ${POOL_STATE_SQL} AS pool_state
       FROM sandboxes s LEFT JOIN sessions ss ON ss.id = s.current_session_id
       WHERE ${POOL_GUARD.member} ORDER BY s.created_at, s.id`,
    );
    return rs.rows.map(toMember);
  }
}

/** A configuration's key in liveConfigs' set. */
export const configKey = (profileId: string, fingerprint: string): string => `${profileId}\n${fingerprint}`;
