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
  idlePastDeadline: "(s.current_session_id IS NOT NULL AND s.idle_expires_at IS NOT NULL AND s.idle_expires_at <= :now)",
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
