/**
 * Sessions: at most one running Ship container per sandbox, started on demand.
 *
 * `ensureRunning` is single-flight twice over: concurrent callers in this
 * process share one promise, and across Bay replicas the sandbox row's current session
 * (`current_session_id`) is claimed by compare-and-set, so exactly one process
 * creates the container (the start itself is SessionStarter's). The winner holds
 * a lease on the `starting` session and renews it while it works; if it dies,
 * the lease lapses and another caller cleans up and starts afresh.
 *
 * Every session has its own secret, handed to its container alone. An endpoint
 * read from the database is trusted only once its Ship has named this session
 * in /meta, answering to this secret. Ending sessions is this module's too.
 */
import { BayError } from "../errors.ts";
import { errorMessage } from "../logger.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import { expiredError, notReadyError, type SessionEnd } from "./lifecycle.ts";
import type { Profile } from "./profiles.ts";
import type { ContainerShape } from "../drivers/driver.ts";
import type { RouteCache } from "./route-cache.ts";
import { type SessionHandle, SessionStarter, type SessionStarterDeps, type SessionStarterOptions } from "./session-starter.ts";

export { mintSecret, type SessionHandle } from "./session-starter.ts";

/** A session as the lifecycle needs it to end one. */
export interface EndableSession {
  id: string;
  sandboxId: string;
  containerId: string | null;
}

export interface SessionManagerOptions extends Omit<SessionStarterOptions, "leaseMs" | "now"> {
  leaseMs?: number;
  now?: () => number;
}

export interface SessionManagerDeps extends SessionStarterDeps {
  /** Forgotten for a sandbox whenever this process ends its session. */
  routes?: Pick<RouteCache, "forget">;
}

const POLL_MS = 100;
/** Sessions whose /meta this process checked; bounded (cleared when it grows past this). */
const MAX_VERIFIED = 10_000;

export class SessionManager {
  private readonly inflight = new Map<string, Promise<SessionHandle>>();
  private readonly verified = new Set<string>();
  private readonly endListeners = new Set<(sandboxId: string) => void>();
  private readonly leaseMs: number;
  private readonly now: () => number;
  private readonly starter: SessionStarter;

  constructor(
    private readonly deps: SessionManagerDeps,
    private readonly opts: SessionManagerOptions,
  ) {
    this.leaseMs = opts.leaseMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.starter = new SessionStarter(
      deps,
      { ...opts, leaseMs: this.leaseMs, now: this.now },
      {
        markVerified: (sessionId) => this.markVerified(sessionId),
        removeContainers: (sessionId, containerId) => this.removeContainers(sessionId, containerId),
      },
    );
  }

  /**
   * A ready session for this sandbox, starting one if needed (with `neverStart`:
   * failing with its error instead). `known` is the sandbox as the caller just
   * read it: when it already names a ready session this process has verified, no
   * further read is needed.
   */
  ensureRunning(sandboxId: string, known?: SandboxRecord, neverStart?: () => Error): Promise<SessionHandle> {
    const ready = this.ready(sandboxId, known);
    if (ready) return Promise.resolve(ready);
    let p = this.inflight.get(sandboxId);
    // A caller that may not start one joins a start already under way, but never leads one others would join.
    if (!p && neverStart) return this.acquire(sandboxId, neverStart);
    if (!p) {
      p = this.acquire(sandboxId).finally(() => this.inflight.delete(sandboxId));
      this.inflight.set(sandboxId, p);
    }
    return p;
  }

  private async acquire(sandboxId: string, neverStart?: () => Error): Promise<SessionHandle> {
    const { sandboxes } = this.deps.stores;
    const deadline = this.now() + this.opts.readyTimeoutMs + this.leaseMs;
    for (;;) {
      const sb = await sandboxes.get(sandboxId, this.now());
      if (!sb || sb.deletedAt !== null) throw new BayError("not_found", `sandbox not found: ${sandboxId}`);
      if (sb.status === "expired") throw expiredError(sandboxId);
      const current = sb.session;
      if (current) {
        if (current.status === "ready" && current.endpoint && current.secret) {
          const handle = {
            sessionId: current.id,
            sandboxId,
            endpoint: current.endpoint,
            secret: current.secret,
            containerId: current.containerId,
          };
          if (await this.verify(handle)) return handle;
          continue;
        }
        if (current.status === "starting" && (current.leaseExpiresAt ?? 0) > this.now()) {
          if (this.now() > deadline) throw notReadyError(sandboxId, "another start is still in progress");
          await Bun.sleep(POLL_MS);
          continue;
        }
        // Ended, without a secret (made before the trust boundary), or a starter whose lease lapsed.
        const why = current.status === "starting" ? "start abandoned" : current.secret ? null : "session has no secret";
        await this.end({ id: current.id, sandboxId, containerId: current.containerId }, "failed", why);
        continue;
      }
      if (sb.currentSessionId) {
        // The current session names a row that does not exist: free it.
        await sandboxes.releaseCurrentSession(sandboxId, sb.currentSessionId);
        continue;
      }
      if (neverStart) throw neverStart();
      const claimed = await this.starter.claim(sb);
      if (!claimed) continue;
      return this.starter.start(sb, claimed.sessionId, claimed.secret);
    }
  }

  /**
   * Checks, once per process, that the Ship at a stored endpoint is this
   * session's (it answers to the secret and names the session). A stored
   * endpoint may be another container's after an engine restart; such a session
   * is ended and false returned, so the caller starts a fresh one.
   */
  private async verify(handle: SessionHandle): Promise<boolean> {
    if (this.verified.has(handle.sessionId)) return true;
    try {
      await this.deps.ship.meta(handle);
      this.markVerified(handle.sessionId);
      return true;
    } catch (e) {
      if (e instanceof BayError && e.code === "timeout") throw notReadyError(handle.sandboxId, "the runtime did not answer");
      this.deps.logger.warn("stored endpoint is not this session's runtime; starting a new one", {
        sandbox_id: handle.sandboxId,
        session_id: handle.sessionId,
        error: errorMessage(e),
      });
      await this.end(
        { id: handle.sessionId, sandboxId: handle.sandboxId, containerId: handle.containerId },
        "failed",
        "endpoint not verified",
      );
      return false;
    }
  }

  private markVerified(sessionId: string): void {
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
    this.verified.add(sessionId);
  }

  /**
   * Starts the session of a warm-pool member whose rows the pool just made
   * (stores.pool.insertMember, leased to this process): like a cold start, plus
   * the kernel warm-up, and without an idle deadline (members are retired by
   * age, not reclaimed as idle). Resolves once the member is warm.
   */
  /** The container a session of `profile` gets, less what each has of its own (warm-pool fingerprints). */
  containerShape(profile: Profile): ContainerShape {
    return this.starter.containerShape(profile);
  }

  startMember(sandboxId: string, sessionId: string, secret: string): Promise<SessionHandle> {
    return this.starter.startMember(sandboxId, sessionId, secret);
  }

  /** The session `known` (as read) says is ready, once its Ship has proved it here; else null (ensureRunning). */
  ready(sandboxId: string, known?: SandboxRecord): SessionHandle | null {
    const s = known?.session;
    if (s?.status !== "ready" || !s.endpoint || !s.secret || !this.verified.has(s.id)) return null;
    return { sessionId: s.id, sandboxId, endpoint: s.endpoint, secret: s.secret, containerId: s.containerId };
  }

  /** Whether this process has checked the session's /meta (a claim of a member it started needs no new check). */
  isVerified(sessionId: string): boolean {
    return this.verified.has(sessionId);
  }

  /**
   * Ends a session: the session is ended first (a compare-and-set on its status,
   * so of several replicas one wins and a start in flight fails its markReady),
   * then its containers go and the sandbox's current session is cleared if it still names
   * this session. Container removal failures are left to the next reconcile.
   * True when this caller ended it.
   */
  async end(sess: EndableSession, outcome: SessionEnd, reason: string | null): Promise<boolean> {
    const { sandboxes, sessions } = this.deps.stores;
    this.deps.routes?.forget(sess.sandboxId);
    const won = await sessions.end(sess.id, outcome, this.now(), reason);
    await this.removeContainers(sess.id, sess.containerId);
    await sandboxes.releaseCurrentSession(sess.sandboxId, sess.id);
    this.verified.delete(sess.id);
    this.fireEnded(sess.sandboxId);
    return won;
  }

  /**
   * Calls `fn` with the sandbox id whenever this process ends a session or
   * removes a deleted sandbox's containers (open streams end at once rather
   * than when their connection breaks). Returns the unsubscribe function.
   */
  onEnded(fn: (sandboxId: string) => void): () => void {
    this.endListeners.add(fn);
    return () => this.endListeners.delete(fn);
  }

  private fireEnded(sandboxId: string): void {
    for (const fn of this.endListeners) {
      try {
        fn(sandboxId);
      } catch (e) {
        this.deps.logger.warn("session end listener failed", { sandbox_id: sandboxId, error: errorMessage(e) });
      }
    }
  }

  /** Stops the sandbox's session (if any): compute goes, the workspace stays. */
  async stop(sandboxId: string): Promise<void> {
    const sb = await this.deps.stores.sandboxes.get(sandboxId, this.now());
    if (!sb?.currentSessionId) return;
    const containerId = sb.session?.containerId ?? null;
    await this.end({ id: sb.currentSessionId, sandboxId, containerId }, "stopped", null);
  }

  /**
   * Called when a call could not reach a session's Ship: if its container is no
   * longer running, or the Ship there is not this session's, the session is
   * ended so the next ensureRunning starts a new one. True when it was ended.
   *
   * An answer without the session's proof is checked before it ends anything:
   * when the endpoint still proves itself this session's on /meta, that answer
   * came from in front of Ship's code (its HTTP server refusing a request it
   * could not parse, say), and the session stays.
   */
  async endIfDead(handle: SessionHandle, wrongSession: boolean): Promise<boolean> {
    const sb = await this.deps.stores.sandboxes.get(handle.sandboxId, this.now());
    // Stopped, deleted or replaced meanwhile: nothing of ours to end.
    if (sb?.currentSessionId !== handle.sessionId) return true;
    const state = handle.containerId ? (await this.deps.driver.containerStatus(handle.containerId)).state : "missing";
    if (state === "running") {
      const alive = wrongSession
        ? await this.deps.ship.meta(handle).then(
            () => true,
            () => false,
          )
        : await this.deps.ship.isHealthy(handle.endpoint);
      if (alive) return false;
    }
    const sess = { id: handle.sessionId, sandboxId: handle.sandboxId, containerId: handle.containerId };
    await this.end(sess, "failed", wrongSession ? "endpoint answered for another session" : `container ${state}`);
    return true;
  }

  /** Removes every container of a sandbox (once it is deleted). */
  async removeSandboxContainers(sandboxId: string): Promise<void> {
    const { driver, logger } = this.deps;
    try {
      for (const c of await driver.listContainers({ sandbox_id: sandboxId, instance_id: this.opts.instanceId })) {
        if (c.labels.session_id) await driver.destroyContainer(c.id);
      }
    } catch (e) {
      // Reconcile removes them later: no active session owns them any more.
      logger.warn("could not remove containers of deleted sandbox", { sandbox_id: sandboxId, error: errorMessage(e) });
    }
    this.fireEnded(sandboxId);
  }

  /** Removes a session's container, also one whose id we never learned (create answered but we lost it). */
  private async removeContainers(sessionId: string, containerId: string | null): Promise<void> {
    const { driver, logger } = this.deps;
    try {
      if (containerId) await driver.destroyContainer(containerId);
      for (const c of await driver.listContainers({ session_id: sessionId, instance_id: this.opts.instanceId })) {
        await driver.destroyContainer(c.id);
      }
    } catch (e) {
      // Reconcile removes it later: it carries our labels and no live session.
      logger.warn("could not remove container of ended session", { session_id: sessionId, error: errorMessage(e) });
    }
  }
}
