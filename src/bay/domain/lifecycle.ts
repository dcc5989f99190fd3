/**
 * The sandbox lifecycle as data: the states, which state may follow which, the
 * guard predicates (as named SQL fragments the stores build their
 * compare-and-set statements from), and the lifecycle's errors. Read this file
 * to know what may follow what; the stores only assemble these pieces.
 *
 * Two records carry the lifecycle:
 *
 * * a **session** (one container run) moves `starting → ready`, and from either to
 *   `failed` or `stopped`, never back; an ended session is history;
 * * a **sandbox** points at its current session (`current_session_id`), has an
 *   idle deadline while a session runs, may expire (TTL), and is deleted as a
 *   tombstone. Its status is computed, never stored (`STATUS_SQL`).
 *
 * A third, the **warm-pool member**, is a sandbox no owner has touched yet: see
 * "The warm pool" below.
 *
 * Every change is a compare-and-set in SQL: of several Bay processes sharing one
 * database, exactly one wins each transition.
 */
import { BayError } from "../errors.ts";

/** States of a session. */
export const SESSION_STATES = ["starting", "ready", "failed", "stopped"] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** Which session state may follow which. */
export const SESSION_TRANSITIONS: Record<SessionState, readonly SessionState[]> = {
  starting: ["ready", "failed", "stopped"],
  ready: ["failed", "stopped"],
  failed: [],
  stopped: [],
};

/** States a session is running or about to run in. */
export const ACTIVE_SESSION_STATES = ["starting", "ready"] as const satisfies readonly SessionState[];

/** The status a client sees (computed by `STATUS_SQL`). */
export const SANDBOX_STATUSES = ["idle", "starting", "ready", "failed", "expired"] as const;
export type SandboxStatus = (typeof SANDBOX_STATUSES)[number];

/**
 * Which sandbox status may follow which. `expired` is final (only deletion
 * follows); deletion may follow every status and is not a status (404 after).
 */
export const SANDBOX_TRANSITIONS: Record<SandboxStatus, readonly SandboxStatus[]> = {
  idle: ["starting", "expired"],
  starting: ["ready", "failed", "idle", "expired"],
  ready: ["idle", "failed", "expired"],
  failed: ["starting", "expired"],
  expired: [],
};

/** True when `to` may follow `from` (for tests and assertions). */
export const mayFollow = (from: SandboxStatus, to: SandboxStatus): boolean => SANDBOX_TRANSITIONS[from].includes(to);

/**
 * Guard predicates over `sandboxes s` (and `sessions ss` where named), with
 * `:now` bound to the current time in ms. Stores splice these into their SQL.
 */
export const GUARD = {
  /** Not deleted. */
  live: "s.deleted_at IS NULL",
  /** Past its TTL, whether or not the reaper has marked it yet. */
  expired: "(s.expired_at IS NOT NULL OR (s.expires_at IS NOT NULL AND s.expires_at <= :now))",
  /** May start compute: not past its TTL and not marked expired. */
  startable: "(s.expired_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > :now))",
  /** TTL passed but not marked expired yet: the reaper's work. */
  newlyExpired: "(s.expired_at IS NULL AND s.expires_at IS NOT NULL AND s.expires_at <= :now)",
  /** Has a session and its idle deadline has passed. */
  idlePastDeadline: `(s.current_session_id IS NOT NULL AND s.idle_expires_at IS NOT NULL AND s.idle_expires_at <= :now
    AND NOT EXISTS (SELECT 1 FROM call_covers c WHERE c.sandbox_id = s.id AND c.until > :now))`,
  /** The session is running or starting (over `sessions`, unaliased). */
  sessionActive: `status IN (${ACTIVE_SESSION_STATES.map((s) => `'${s}'`).join(", ")})`,
} as const;

/** The status rule, in one place: expired wins, then the session's state, then the last start error. */
export const STATUS_SQL = `CASE
  WHEN ${GUARD.expired} THEN 'expired'
  WHEN ss.status = 'ready' THEN 'ready'
  WHEN ss.status = 'starting' THEN 'starting'
  WHEN s.last_error IS NOT NULL THEN 'failed'
  ELSE 'idle' END`;

// --- the warm pool ---------------------------------------------------------------

/**
 * The owner of a warm-pool member: the empty owner, which no identity can have
 * (API-key owners and JWT subjects are non-empty, anonymous owners carry a
 * prefix). So every owner-scoped read, listing and quota count leaves members
 * out without a condition of its own.
 */
export const POOL_OWNER = "";

/**
 * States of a warm-pool member: a sandbox row owned by `POOL_OWNER`, with its
 * own managed workspace and a session, computed from that session
 * (`POOL_STATE_SQL`):
 *
 * * `warming`: its session is starting (container, Ship, /meta, kernel warm-up);
 * * `warm`: its session is ready and warmed; claimable until it is too old, or
 *   until its profile makes another container than it was made from;
 * * `stale`: its session ended (start failed or was abandoned, container died): retire it;
 * * `claimed`: an owner took it (one compare-and-set that sets the owner); from
 *   then on it is an ordinary sandbox and never a member again;
 * * `retired`: tombstoned with its workspace (too old, stale, or beyond the size).
 */
export const POOL_MEMBER_STATES = ["warming", "warm", "stale", "claimed", "retired"] as const;
export type PoolMemberState = (typeof POOL_MEMBER_STATES)[number];

/** Which member state may follow which. Claimed and retired are final: a member is never reused. */
export const POOL_TRANSITIONS: Record<PoolMemberState, readonly PoolMemberState[]> = {
  warming: ["warm", "stale", "retired"],
  warm: ["claimed", "stale", "retired"],
  stale: ["retired"],
  claimed: [],
  retired: [],
};

/** True when member state `to` may follow `from`. */
export const poolMayFollow = (from: PoolMemberState, to: PoolMemberState): boolean => POOL_TRANSITIONS[from].includes(to);

/** Guards over `sandboxes s` (and its current session `ss`) for warm-pool members. */
export const POOL_GUARD = {
  /** A live, unclaimed member. */
  member: `s.owner = '${POOL_OWNER}' AND s.deleted_at IS NULL`,
  /**
   * Claimable: a member whose warmed session is ready, younger than `:oldest` allows, and
   * made from what its profile makes now (`:fingerprint`, pool-fingerprint.ts).
   */
  claimable: `s.owner = '${POOL_OWNER}' AND s.deleted_at IS NULL AND ss.status = 'ready' AND s.created_at > :oldest
    AND s.pool_fingerprint = :fingerprint`,
} as const;

/** A live member's state (see POOL_MEMBER_STATES); claimed and retired rows are not members. */
export const POOL_STATE_SQL = `CASE
  WHEN ss.status = 'ready' THEN 'warm'
  WHEN ss.status = 'starting' THEN 'warming'
  ELSE 'stale' END`;

/** Why a session ended: `stopped` when asked to (stop, idle, expiry, delete), `failed` otherwise. */
export type SessionEnd = "failed" | "stopped";

// --- the lifecycle's errors ---------------------------------------------------

/** A capability call, keepalive or TTL change on a sandbox whose TTL passed. */
export const expiredError = (id: string) => new BayError("sandbox_expired", `sandbox has expired: ${id}`, { details: { sandbox_id: id } });

/** A start ended by a stop, delete, expiry or another replica's takeover. */
export const supersededError = () =>
  new BayError("conflict", "the sandbox was stopped, deleted or expired while it was starting", { details: { reason: "superseded" } });

/** The runtime could not become ready (yet). */
export const notReadyError = (id: string, why: string) =>
  new BayError("session_not_ready", `sandbox runtime is not ready: ${why}`, { retryAfter: 2, details: { sandbox_id: id } });
