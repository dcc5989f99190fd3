/**
 * Routes a capability call to the sandbox's Ship: checks ownership, expiry and
 * the profile's capabilities before any container starts, ensures a session,
 * runs the call against it, and keeps the idle deadline moving. When the call
 * never reached this session's Ship (connection refused, or the port now
 * answers for another session), the session is replaced and a replayable call
 * is sent once more.
 */
import { BayError, notFound } from "../errors.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { ShipClient } from "../runtime/ship-client.ts";
import { isUnreachable, notExecuted } from "../runtime/ship-errors.ts";
import { ShipBadResponseError } from "../runtime/errors/ship-bad-response-error.ts";
import { ShipWrongSessionError } from "../runtime/errors/ship-wrong-session-error.ts";
import { afterAnswer } from "../observability/after-answer.ts";
import type { Stores } from "../store/index.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import { expiredError } from "./lifecycle.ts";
import { type OpenSlot, OpenStreamSlots } from "./open-stream-slots.ts";
import {
  coverSentBody,
  coverStream,
  endedError,
  holdChannel,
  isOpenChannel,
  type SentBody,
  SessionEndSignals,
  type StreamHooks,
} from "./open-streams.ts";
import type { Capability, Language, ProfileRegistry } from "./profiles.ts";
import { CallCover } from "./call-cover.ts";
import type { RouteCache } from "./route-cache.ts";
import type { SessionHandle, SessionManager } from "./session-manager.ts";

/** Who asks, for which sandbox, under which request id. */
export interface CallContext {
  owner: string;
  sandboxId: string;
  requestId: string;
  /** Aborts when the client goes away. */
  signal?: AbortSignal;
  /**
   * Set when the server can stream a file's body on by itself and tell when it is
   * over (a download under Bun.serve); `signal` then also aborts on `sent.cut()`.
   */
  sent?: SentBody;
  /**
   * Whose open-stream slots a call that `opens` takes, one of each (default: one
   * of the owner's; `max` defaults to the per-owner limit). Anonymous visitors of
   * a public sandbox host take one of that sandbox's own and one of all visitors',
   * so they can never use up the owner's, nor the process's sockets.
   */
  slots?: ReadonlyArray<{ key: string; scope: string; max?: number }>;
  /**
   * Set when the call runs only on a runtime that is already up: where it would
   * start one (none, or the last one found dead), it fails with this error
   * instead (a sandbox host's request: a stopped sandbox has no server to reach).
   */
  neverStarts?: () => BayError;
}

/**
 * What a call needs of the sandbox's profile: a capability, or for code contexts
 * (`code`) a language (absent: any language at all).
 */
export type Need = Capability | "code";

/** What one call needs besides its context. */
export interface CallPlan<T> {
  capability: Need;
  /** With capability `code`: the language the call needs, when it names one. */
  language?: Language;
  /** Operation name, for the audit log. */
  operation: string;
  /** How long the call may run: the session is kept from idle reclaim at least that long. */
  coverMs: number;
  /** False for calls whose body is a stream: it cannot be sent twice. */
  replayable: boolean;
  /**
   * The answer stays open for as long as the client keeps it (an event stream, a
   * followed output, a watch, a terminal): it holds one of the owner's open-stream
   * slots from the call's start to the answer's end.
   */
  opens?: boolean;
  /**
   * The answer is a server's in the sandbox, relayed as it is: whatever its type,
   * its body is covered as a stream, and never gets an event of Bay's.
   */
  relaysServer?: boolean;
  /** Runs the call against a ready session. */
  run(ship: ShipClient, session: SessionHandle): Promise<T>;
}

export interface CapabilityRouterDeps {
  stores: Stores;
  sessions: SessionManager;
  ship: ShipClient;
  profiles: ProfileRegistry;
  logger: Logger;
  /** Sandboxes this process routed recently (no read per call); absent: every call reads the database. */
  routes?: RouteCache;
  /** Long-lived answers each owner may hold open at once in this process (absent: unbounded). */
  maxOpenStreamsPerOwner?: number;
  now?: () => number;
}

/** Room beyond a call's own deadline before the reaper may reclaim its session. */
const COVER_MARGIN_MS = 5_000;
const MAX_DEADLINE_SLACK_MS = 30_000;
const TOUCH_INTERVAL_MS = 10_000;

export class CapabilityRouter {
  private readonly now: () => number;
  /** When this process last wrote each workspace's last_accessed_at. */
  private readonly touched = new Map<string, number>();
  /** Streams and channels open here, told when this process ends their session. */
  private readonly ends = new SessionEndSignals();
  private readonly slots: OpenStreamSlots;
  constructor(private readonly deps: CapabilityRouterDeps) {
    this.now = deps.now ?? Date.now;
    this.slots = new OpenStreamSlots(deps.maxOpenStreamsPerOwner);
    deps.sessions.onEnded((sandboxId) => this.ends.fire(sandboxId));
  }

  /** Runs the call and returns what `plan.run` returned. */
  async call<T>(ctx: CallContext, plan: CallPlan<T>): Promise<T> {
    const started = this.now();
    let outcome = "ok";
    let slot: OpenSlot | null = null;
    try {
      // Before anything else: a full quota starts no container and sends nothing to a Ship.
      if (plan.opens) slot = ctx.slots ? this.slots.takeAll(ctx.slots) : this.slots.take(ctx.owner);
      return await this.route(ctx, plan, slot);
    } catch (e) {
      slot?.release();
      outcome = e instanceof BayError ? e.code : "internal_error";
      throw e;
    } finally {
      // The audit line: who did what where, never the code, command or content (the request id
      // comes from the request context), written once the answer is on its way.
      const duration = this.now() - started;
      afterAnswer(() =>
        this.deps.logger.info("capability call", {
          owner: ctx.owner,
          sandbox_id: ctx.sandboxId,
          capability: plan.capability,
          operation: plan.operation,
          duration_ms: duration,
          outcome,
        }),
      );
    }
  }

  /**
   * Checks everything that can be refused before a container starts, on the
   * sandbox as the store has it now (the route cache is forgotten: route() reads
   * it itself, before coming here).
   */
  async preflight(owner: string, sandboxId: string, capability: Need, language?: Language) {
    this.deps.routes?.forget(sandboxId);
    const sb = await this.deps.stores.sandboxes.findLive(owner, sandboxId, this.now());
    if (!sb) throw notFound("sandbox", sandboxId);
    return this.checked(sb, capability, language);
  }

  /** The sandbox and its profile, once the sandbox may take this call. */
  private checked(sb: SandboxRecord, capability: Need, language?: Language) {
    const { profiles } = this.deps;
    if (sb.status === "expired") throw expiredError(sb.id);
    const profile = profiles.forSandbox(sb.profileId);
    if (capability === "code") profiles.assertLanguage(profile, language ?? null);
    else profiles.assertCapability(profile, capability);
    return { sandbox: sb, profile };
  }

  /** Long-lived answers `owner` holds open in this process now. */
  openStreams(owner: string): number {
    return this.slots.held(owner);
  }

  private async route<T>(ctx: CallContext, plan: CallPlan<T>, slot: OpenSlot | null): Promise<T> {
    const { sessions, stores, routes } = this.deps;
    // A sandbox routed moments ago, on a session already checked: no promise of their own (the hot path).
    const known = routes?.get(ctx.owner, ctx.sandboxId);
    const { sandbox, profile } = known
      ? this.checked(known, plan.capability, plan.language)
      : await this.preflight(ctx.owner, ctx.sandboxId, plan.capability, plan.language);
    const session = sessions.ready(ctx.sandboxId, sandbox) ?? (await sessions.ensureRunning(ctx.sandboxId, sandbox, ctx.neverStarts));
    // Read with the session it runs on, and that session checked: the next call needs no read.
    if (sandbox.session?.id === session.sessionId && sessions.isVerified(session.sessionId)) routes?.remember(sandbox);
    const idleMs = profile.idle_timeout * 1000;
    // The idle deadline as last read (null: no session yet, the start just set it).
    let deadline = sandbox.session?.id === session.sessionId ? sandbox.idleExpiresAt : null;
    // Cover the call itself: an exec may outlast the idle deadline, and no reaper (of
    // any replica) may reclaim the session while it runs. Written only when needed, as
    // a row of its own (a lease, call-cover.ts): a call that ends meanwhile resets the
    // idle deadline, never this.
    const callCover = this.now() + plan.coverMs + COVER_MARGIN_MS;
    let cover: CallCover | null = null;
    const finish = () => {
      cover?.stop();
      slot?.release();
      const coverId = cover?.id ?? null;
      const next = nextIdleDeadline(deadline, idleMs, this.now());
      // Most calls end with the deadline as it was (within its slack): nothing to write, nothing to schedule.
      if (coverId === null && next === null) return;
      // After the answer is on its way: an embedded database write blocks the event loop (and fsyncs).
      setImmediate(
        () =>
          void this.settleIdleDeadline(ctx.sandboxId, next, coverId).catch((e: unknown) =>
            this.deps.logger.warn("idle deadline not settled after a call; its cover lapses with its lease", {
              sandbox_id: ctx.sandboxId,
              error: errorMessage(e),
            }),
          ),
      );
    };
    let handedOff = false;
    try {
      if (deadline === null || deadline < callCover) {
        cover = new CallCover(stores.sandboxes, ctx.sandboxId, callCover, this.now, (e) =>
          this.deps.logger.warn("call cover not renewed", { sandbox_id: ctx.sandboxId, error: errorMessage(e) }),
        );
        await cover.take();
        deadline = null; // the idle deadline is rewritten after the call
      }
      const result = await this.send(ctx, plan, session);
      this.touchWorkspace(sandbox.workspaceId);
      // The content type first: reading `.body` makes the runtime build a stream object for it.
      if (result instanceof Response && (plan.relaysServer || isStreamed(result)) && result.body) {
        // A streamed answer (events, a download) is part of the call: the session
        // stays covered until its body ends, however long that is.
        handedOff = true;
        const hooks = this.handOff(ctx, session, idleMs, finish);
        const events = !plan.relaysServer && isEventStream(result);
        if (ctx.sent && !events) return coverSentBody(result, hooks, idleMs, this.ends, ctx.sandboxId, ctx.sent) as T;
        return coverStream(result, hooks, idleMs, this.ends, ctx.sandboxId, ctx.requestId, events) as T;
      }
      if (isOpenChannel(result)) {
        // A WebSocket bridge: covered, likewise, until it closes.
        handedOff = true;
        holdChannel(result, this.handOff(ctx, session, idleMs, finish), idleMs, this.ends, ctx.sandboxId);
      }
      return result;
    } finally {
      if (!handedOff) finish();
    }
  }

  /**
   * A long-lived answer's hooks, its idle deadline pushed at once: its call's cover may
   * be short (a watch, a terminal) and its first renewal comes only after a while, so a
   * stream opened late in the idle window would otherwise lose its session before then.
   */
  private handOff(ctx: CallContext, session: SessionHandle, idleMs: number, done: () => void): StreamHooks {
    const hooks = this.streamHooks(ctx, session, idleMs, done);
    void hooks
      .extend()
      .catch((e: unknown) => this.deps.logger.warn("stream cover not renewed", { sandbox_id: ctx.sandboxId, error: errorMessage(e) }));
    return hooks;
  }

  /** What a long-lived answer needs: renewing its cover, checking its session, explaining its end. */
  private streamHooks(ctx: CallContext, session: SessionHandle, idleMs: number, done: () => void): StreamHooks {
    const { sandboxes, sessions } = this.deps.stores;
    // A session is ended in the database before its container goes, so a stream
    // cut by a stop or reclaim finds it ended here; one still running lost its Ship.
    const state = async () => {
      const [sb, sess] = await Promise.all([sandboxes.get(ctx.sandboxId, this.now()), sessions.get(session.sessionId)]);
      const running = !!sb && sb.deletedAt === null && sb.currentSessionId === session.sessionId && sess?.status === "ready";
      return { sb, running, stopped: sess?.status === "stopped" };
    };
    return {
      extend: () => sandboxes.extendIdleDeadline(ctx.sandboxId, this.now() + idleMs),
      stillCurrent: async () => (await state()).running,
      whyEnded: async () => {
        const { sb, running, stopped } = await state();
        return endedError(sb, ctx.sandboxId, running || !stopped);
      },
      done,
    };
  }

  /**
   * After a call: the idle deadline `next` (nextIdleDeadline; null: it stays) is written,
   * and the call's own cover, if it took one, goes (one transaction).
   */
  private async settleIdleDeadline(sandboxId: string, next: number | null, coverId: string | null): Promise<void> {
    if (coverId !== null) await this.deps.stores.sandboxes.endCallCover(coverId, sandboxId, next);
    else if (next !== null) await this.deps.stores.sandboxes.extendIdleDeadline(sandboxId, next);
    if (next !== null) this.deps.routes?.noteIdleDeadline(sandboxId, next);
  }

  /**
   * last_accessed_at, kept to within TOUCH_INTERVAL_MS without a write per call,
   * written after the answer is on its way (it is informational; nothing waits for it).
   */
  private touchWorkspace(workspaceId: string): void {
    const now = this.now();
    if (now - (this.touched.get(workspaceId) ?? 0) < TOUCH_INTERVAL_MS) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(workspaceId, now);
    setImmediate(() => void this.deps.stores.workspaces.touch(workspaceId, now).catch(() => {}));
  }

  /**
   * Runs the call. When it could not reach this session's Ship (the container is
   * gone, or its port answers for another session), the session is ended and a
   * replayable call that never ran is sent once more to a fresh session. A
   * connection lost mid-call is only reported: the Ship may have run the code
   * (its own OOM, say), and running it twice is worse.
   */
  private async send<T>(ctx: CallContext, plan: CallPlan<T>, session: SessionHandle): Promise<T> {
    const { sessions, ship } = this.deps;
    try {
      return await plan.run(ship, session);
    } catch (e) {
      if (!isUnreachable(e)) throw e;
      // What this process remembered of the sandbox may be what went stale (another replica stopped it, say).
      this.deps.routes?.forget(ctx.sandboxId);
      if (!(await sessions.endIfDead(session, e instanceof ShipWrongSessionError))) {
        // The session's own Ship is there: what answered without its proof stood in front of its code.
        if (e instanceof ShipWrongSessionError && e.answerStatus !== null) {
          throw new ShipBadResponseError(`the sandbox runtime's HTTP server refused the request (HTTP ${e.answerStatus})`, {
            ship_status: e.answerStatus,
          });
        }
        throw e;
      }
      // Gone because the sandbox was deleted or expired meanwhile: say that (404 / 409).
      const { sandbox } = await this.preflight(ctx.owner, ctx.sandboxId, plan.capability, plan.language);
      if (!notExecuted(e)) throw e; // the dead session is ended; the next call starts a new one
      if (!plan.replayable) {
        throw new BayError("session_not_ready", "the sandbox runtime was restarted; send the request again", { retryAfter: 1 });
      }
      return plan.run(ship, await sessions.ensureRunning(ctx.sandboxId, sandbox, ctx.neverStarts));
    }
  }
}

/** Answers whose body may stay open for long: event streams and file bytes (JSON answers are small and whole). */
function isStreamed(res: Response): boolean {
  const type = res.headers.get("content-type") ?? "";
  return type.startsWith("text/event-stream") || type.startsWith("application/octet-stream");
}

const isEventStream = (res: Response): boolean => (res.headers.get("content-type") ?? "").startsWith("text/event-stream");

/**
 * The idle deadline after a call ends at `now`: now + idle_timeout (calls still
 * running, here or on another replica, have covers of their own), or null when
 * `known` is already within its slack of that. The deadline is a commit, so it is
 * rewritten only once it has drifted by more than a small slack (5% of the idle
 * timeout, at most 30 s), and always rounded later: a session is reclaimed between
 * idle_timeout and idle_timeout + twice the slack after its last call ends, never early.
 */
export function nextIdleDeadline(known: number | null, idleMs: number, now: number): number | null {
  const slack = Math.min(MAX_DEADLINE_SLACK_MS, idleMs * 0.05);
  const due = now + idleMs;
  return known !== null && known >= due && known <= due + 2 * slack ? null : due + slack;
}
