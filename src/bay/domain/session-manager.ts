/**
 * Sessions: at most one running Ship container per sandbox, started on demand.
 *
 * `ensureRunning` is single-flight twice over: concurrent callers in this
 * process share one promise, and across Bay replicas the sandbox row's current session
 * (`current_session_id`) is claimed by compare-and-set, so exactly one process
 * creates the container. The winner holds a lease on the `starting` session and
 * renews it while it works; if it dies, the lease lapses and another caller
 * cleans up and starts afresh.
 *
 * Every session has its own secret, minted here and handed to its container
 * alone (on stdin at start). An endpoint read from the database is trusted only
 * once its Ship has named this session in /meta, answering to this secret.
 */
import { randomBytes } from "node:crypto";
import type { ContainerSpec, Driver } from "../drivers/driver.ts";
import { BayError } from "../errors.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { BayMetrics } from "../observability/bay-metrics.ts";
import type { ShipClient, ShipTarget } from "../runtime/ship-client.ts";
import type { Stores } from "../store/index.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import { CREDENTIALS_ENV } from "../../protocol/ship/constants.ts";
import { newId } from "./ids.ts";
import { expiredError, notReadyError, type SessionEnd, supersededError } from "./lifecycle.ts";
import { type Profile, type ProfileRegistry, resolveProfileEnv } from "./profiles.ts";
import { waitForShip, warmPythonKernel } from "./readiness.ts";
import type { RouteCache } from "./route-cache.ts";

/** A ready session: where its Ship answers, with what secret, in which container. */
export interface SessionHandle extends ShipTarget {
  sandboxId: string;
  containerId: string | null;
}

/** A session as the lifecycle needs it to end one. */
export interface EndableSession {
  id: string;
  sandboxId: string;
  containerId: string | null;
}

export interface SessionManagerOptions {
  instanceId: string;
  /** Unique per Bay process; names lease holders. */
  replicaId: string;
  readyTimeoutMs: number;
  leaseMs?: number;
  hostEnv?: Record<string, string | undefined>;
  /** Bay's upload limit, passed to Ship. */
  maxUploadBytes: number;
  /** Rotation of every container's log. */
  logs?: { maxSizeMb: number; maxFiles: number };
  /** Sessions running or starting at once, all owners together. */
  maxLiveSessions?: number;
  /** Sessions one owner may be starting at once. */
  maxStartsPerOwner?: number;
  now?: () => number;
}

export interface SessionManagerDeps {
  stores: Stores;
  driver: Driver;
  ship: ShipClient;
  profiles: ProfileRegistry;
  logger: Logger;
  metrics?: Pick<BayMetrics, "sessionStarted">;
  /** Forgotten for a sandbox whenever this process ends its session. */
  routes?: Pick<RouteCache, "forget">;
}

const POLL_MS = 100;
/** Sessions whose /meta this process checked; bounded (cleared when it grows past this). */
const MAX_VERIFIED = 10_000;

/** A fresh session secret: 256 random bits, base64url. */
export const mintSecret = (): string => randomBytes(32).toString("base64url");

export class SessionManager {
  private readonly inflight = new Map<string, Promise<SessionHandle>>();
  private readonly verified = new Set<string>();
  private readonly endListeners = new Set<(sandboxId: string) => void>();
  private readonly leaseMs: number;
  private readonly now: () => number;

  constructor(
    private readonly deps: SessionManagerDeps,
    private readonly opts: SessionManagerOptions,
  ) {
    this.leaseMs = opts.leaseMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * A ready session for this sandbox, starting one if needed. `known` is the
   * sandbox as the caller just read it: when it already names a ready session
   * this process has verified, no further read is needed.
   */
  ensureRunning(sandboxId: string, known?: SandboxRecord): Promise<SessionHandle> {
    const s = known?.session;
    if (s?.status === "ready" && s.endpoint && s.secret && this.verified.has(s.id)) {
      return Promise.resolve({ sessionId: s.id, sandboxId, endpoint: s.endpoint, secret: s.secret, containerId: s.containerId });
    }
    let p = this.inflight.get(sandboxId);
    if (!p) {
      p = this.acquire(sandboxId).finally(() => this.inflight.delete(sandboxId));
      this.inflight.set(sandboxId, p);
    }
    return p;
  }

  private async acquire(sandboxId: string): Promise<SessionHandle> {
    const { sandboxes, sessions } = this.deps.stores;
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
      const sessionId = newId("sess", this.now());
      const secret = mintSecret();
      const inserted = await sessions.insertStarting({
        id: sessionId,
        sandboxId,
        secret,
        leaseOwner: this.opts.replicaId,
        leaseExpiresAt: this.now() + this.leaseMs,
        now: this.now(),
        ...(this.opts.maxLiveSessions ? { maxActive: this.opts.maxLiveSessions } : {}),
        ...(this.opts.maxStartsPerOwner ? { maxStartingPerOwner: this.opts.maxStartsPerOwner } : {}),
      });
      if (!inserted) throw await this.capacityError(sandboxId);
      if (!(await sandboxes.claimCurrentSession(sandboxId, sessionId, this.now()))) {
        await sessions.end(sessionId, "failed", this.now(), "lost the start race");
        continue;
      }
      return this.start(sb, sessionId, secret);
    }
  }

  /** Which cap refused a new session: all of Bay's (503) or this owner's concurrent starts (429). */
  private async capacityError(sandboxId: string): Promise<BayError> {
    const counts = await this.deps.stores.sessions.activeCounts(sandboxId);
    const max = this.opts.maxLiveSessions ?? Number.MAX_SAFE_INTEGER;
    if (counts.active >= max) {
      this.deps.logger.warn("live session cap reached", { limit: max });
      return new BayError("session_not_ready", "Bay is running as many sandboxes as it may; retry shortly", {
        retryAfter: 10,
        details: { reason: "capacity", limit: max },
      });
    }
    return new BayError("quota_exceeded", "too many sandboxes of this owner are starting at once; retry shortly", {
      retryAfter: 2,
      details: { reason: "concurrent_starts", limit: this.opts.maxStartsPerOwner ?? null },
    });
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
  async startMember(sandboxId: string, sessionId: string, secret: string): Promise<SessionHandle> {
    const sb = await this.deps.stores.sandboxes.get(sandboxId, this.now());
    if (!sb || sb.deletedAt !== null || sb.currentSessionId !== sessionId) throw supersededError();
    return this.start(sb, sessionId, secret, "member");
  }

  /** Whether this process has checked the session's /meta (a claim of a member it started needs no new check). */
  isVerified(sessionId: string): boolean {
    return this.verified.has(sessionId);
  }

  /**
   * Creates, starts and checks the container for a session this process has
   * claimed. A `member` start (warm pool) also warms the Python kernel before it
   * is marked ready, and arms no idle deadline.
   */
  private async start(sb: SandboxRecord, sessionId: string, secret: string, kind: "cold" | "member" = "cold"): Promise<SessionHandle> {
    const { stores, driver, profiles, logger } = this.deps;
    const profile = profiles.forSandbox(sb.profileId);
    const member = kind === "member";
    // The lease is renewed while this start runs; once it is lost (taken over
    // after a stall, or the session was ended) the start stops at its next step.
    let leaseLost = false;
    const renew = setInterval(
      () => {
        stores.sessions
          .renewLease(sessionId, this.opts.replicaId, this.now() + this.leaseMs)
          .then((held) => {
            if (!held) leaseLost = true;
          })
          .catch(() => {});
      },
      Math.max(500, this.leaseMs / 3),
    );
    const stillOurs = () => {
      if (leaseLost) throw supersededError();
    };
    let containerId: string | null = null;
    const started = this.now();
    // Where a start's time goes, in its "ready" log line (engine create and start, Ship's boot, the kernel's warm-up).
    const steps: Record<string, number> = {};
    let mark = started;
    const step = (name: string) => {
      const t = this.now();
      steps[name] = t - mark;
      mark = t;
    };
    try {
      const ws = await stores.workspaces.get(sb.workspaceId);
      // Never re-create the volume of a deleted workspace: reconcile would remove it again, data and all.
      if (!ws || ws.deletedAt !== null) throw new BayError("conflict", `workspace ${sb.workspaceId} has been deleted`);
      const labels = {
        owner: sb.owner,
        sandbox_id: sb.id,
        session_id: sessionId,
        workspace_id: ws.id,
        profile_id: profile.id,
        instance_id: this.opts.instanceId,
        ...(member ? { pool: profile.id } : {}),
      };
      // An external workspace outlives sandboxes: its volume names none of them.
      const volumeLabels = { ...labels, session_id: undefined, profile_id: undefined, sandbox_id: ws.managed ? sb.id : undefined };
      await driver.createVolume(ws.volumeName, { ...volumeLabels, workspace_kind: ws.managed ? "managed" : "external" });
      stillOurs();
      containerId = await driver.createContainer(this.containerSpec(profile, sessionId, ws.volumeName, labels));
      if (!(await stores.sessions.setContainer(sessionId, containerId, this.opts.replicaId))) throw supersededError();
      step("create_ms");
      const credentials = JSON.stringify({ session_id: sessionId, secret });
      const endpoint = await driver.startContainer(containerId, profile.runtime_port, credentials);
      step("start_ms");
      stillOurs();
      const handle: SessionHandle = { sessionId, sandboxId: sb.id, endpoint: endpoint.baseUrl, secret, containerId };
      await waitForShip({
        ship: this.deps.ship,
        driver,
        containerId,
        target: handle,
        capabilities: profile.capabilities,
        languages: profile.languages,
        deadline: started + this.opts.readyTimeoutMs,
        now: this.now,
      });
      step("ship_ms");
      if (member && profile.capabilities.includes("python")) {
        stillOurs();
        // Nobody waits on a member: its kernel gets a ready timeout of its own after Ship's
        // (on a loaded host, Ship and the kernel together can take longer than one).
        await warmPythonKernel({ ship: this.deps.ship, target: handle, deadline: this.now() + this.opts.readyTimeoutMs, now: this.now });
        step("kernel_ms");
      }
      const markReady = stores.sessions.markReadyStatement(sessionId, endpoint.baseUrl, this.now());
      const [ready] = await stores.db.batch(
        member ? [markReady] : [markReady, stores.sandboxes.armIdleDeadlineStatement(sessionId, this.now() + profile.idle_timeout * 1000)],
        "write",
      );
      if (ready?.rowsAffected !== 1) throw supersededError();
      this.markVerified(sessionId);
      logger.info(member ? "warm-pool member ready" : "session ready", {
        sandbox_id: sb.id,
        session_id: sessionId,
        ms: this.now() - started,
        ...steps,
      });
      if (!member) this.deps.metrics?.sessionStarted(profile.id, "cold", "ok", this.now() - started);
      return handle;
    } catch (e) {
      const failure = asStartError(e, profile.image);
      const ours = await this.cleanupFailedStart(sb.id, sessionId, containerId, e, failure.message);
      if (ours && !member) this.deps.metrics?.sessionStarted(profile.id, "cold", "failed", this.now() - started);
      // A stop, delete, expiry or takeover ended this start: that, not the engine's complaint, is the answer.
      throw ours ? failure : supersededError();
    } finally {
      clearInterval(renew);
    }
  }

  private containerSpec(profile: Profile, sessionId: string, volumeName: string, labels: ContainerSpec["labels"]): ContainerSpec {
    return {
      name: `bay-${labels.sandbox_id}-${sessionId.slice(-8)}`,
      image: profile.image,
      runtimePort: profile.runtime_port,
      env: {
        // Profile env first: the two Ship settings below cannot be overridden by it.
        ...resolveProfileEnv(profile.env, this.opts.hostEnv ?? {}),
        // Ship's own upload cap follows Bay's, so raising Bay's limit is not silently capped inside.
        SHIP_MAX_UPLOAD_BYTES: String(this.opts.maxUploadBytes),
        SHIP_MAX_CONTEXTS: String(profile.max_contexts),
        [CREDENTIALS_ENV]: "stdin",
      },
      credentialsOnStdin: true,
      ...(this.opts.logs ? { logs: this.opts.logs } : {}),
      labels,
      cpus: profile.cpus,
      memoryMb: profile.memory_mb,
      pidsLimit: profile.pids_limit,
      volumeName,
      network: profile.network,
      ...(profile.runtime ? { runtime: profile.runtime } : {}),
      readOnlyRootfs: profile.read_only_rootfs,
      tmpfsMb: profile.tmpfs_mb,
    };
  }

  /**
   * Undoes a failed start. Returns false when something else had already ended
   * the session (stop, delete, expiry, a takeover): then the sandbox is not
   * marked failed, since the start did not fail on its own.
   */
  private async cleanupFailedStart(
    sandboxId: string,
    sessionId: string,
    containerId: string | null,
    cause: unknown,
    publicMessage: string,
  ): Promise<boolean> {
    const { stores, logger } = this.deps;
    const message = errorMessage(cause);
    const internal = cause instanceof BayError ? cause.internal : {};
    const ended = await stores.sessions.end(sessionId, "failed", this.now(), message).catch(() => false);
    await this.removeContainers(sessionId, containerId);
    const freed = await stores.sandboxes.releaseCurrentSession(sandboxId, sessionId).catch(() => false);
    if (!ended) {
      logger.info("start superseded", { sandbox_id: sandboxId, session_id: sessionId });
      return false;
    }
    logger.warn("session start failed", { sandbox_id: sandboxId, session_id: sessionId, error: message, ...internal });
    // last_error is shown to the client (GET /v1/sandboxes/{id}): the public message only.
    if (freed) await stores.sandboxes.setLastError(sandboxId, publicMessage).catch(() => {});
    return true;
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
   */
  async endIfDead(handle: SessionHandle, wrongSession: boolean): Promise<boolean> {
    const sb = await this.deps.stores.sandboxes.get(handle.sandboxId, this.now());
    // Stopped, deleted or replaced meanwhile: nothing of ours to end.
    if (sb?.currentSessionId !== handle.sessionId) return true;
    const state = handle.containerId ? (await this.deps.driver.containerStatus(handle.containerId)).state : "missing";
    if (!wrongSession && state === "running" && (await this.deps.ship.isHealthy(handle.endpoint))) return false;
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

/** Start failures that keep their own code; any other is the runtime not becoming ready. */
const KEEP_ON_START = new Set(["driver_unavailable", "ship_error", "session_not_ready", "timeout", "conflict"]);

/**
 * A start that failed inside the engine (image missing, container died at
 * once, unknown runtime, a network that does not exist, a name clash) is the
 * runtime not becoming ready: 503 with Retry-After. A BayError's message and
 * details are written for clients; the engine's own words stay in its
 * `internal` bag (logged). An engine that cannot be reached, a Ship that
 * answered wrongly, and a start that was superseded keep their own codes.
 */
function asStartError(e: unknown, image: string): BayError {
  if (e instanceof BayError && KEEP_ON_START.has(e.code)) return e;
  if (!(e instanceof BayError))
    return new BayError("session_not_ready", "sandbox runtime failed to start", { retryAfter: 2, cause: e, details: { image } });
  const message =
    e.details.reason === "image_missing"
      ? `sandbox runtime image ${image} is not present on the Docker host; build it with \`bun run image:build\``
      : `sandbox runtime failed to start: ${e.message}`;
  return new BayError("session_not_ready", message, { retryAfter: 2, cause: e, details: { ...e.details, image }, internal: e.internal });
}
