/**
 * Sessions: at most one running Ship container per sandbox, started on demand.
 *
 * `ensureRunning` is single-flight twice over: concurrent callers in this
 * process share one promise, and across Bay replicas the sandbox row's
 * `current_session_id` is claimed by compare-and-set, so exactly one process
 * creates the container. The winner holds a lease on the `starting` session and
 * renews it while it works; if it dies, the lease lapses and another caller
 * cleans up and starts afresh.
 */
import type { ContainerSpec, Driver } from "../drivers/driver.ts";
import { BayError } from "../errors.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { ShipClient } from "../runtime/ship-client.ts";
import type { Stores } from "../store/index.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import type { SessionRecord } from "../store/session-store.ts";
import { newId } from "./ids.ts";
import { resolveProfileEnv, type Profile, type ProfileRegistry } from "./profiles.ts";
import { waitForShip } from "./readiness.ts";

export interface SessionManagerOptions {
  instanceId: string;
  /** Unique per Bay process; names lease holders. */
  replicaId: string;
  readyTimeoutMs: number;
  leaseMs?: number;
  hostEnv?: Record<string, string | undefined>;
  /** Bay's upload limit, passed to Ship. */
  maxUploadBytes: number;
  now?: () => number;
}

export interface SessionManagerDeps {
  stores: Stores;
  driver: Driver;
  ship: ShipClient;
  profiles: ProfileRegistry;
  logger: Logger;
}

const POLL_MS = 100;

export class SessionManager {
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly leaseMs: number;
  private readonly now: () => number;

  constructor(
    private readonly deps: SessionManagerDeps,
    private readonly opts: SessionManagerOptions,
  ) {
    this.leaseMs = opts.leaseMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** The base URL of a ready Ship for this sandbox, starting one if needed. */
  ensureRunning(sandboxId: string): Promise<string> {
    let p = this.inflight.get(sandboxId);
    if (!p) {
      p = this.acquire(sandboxId).finally(() => this.inflight.delete(sandboxId));
      this.inflight.set(sandboxId, p);
    }
    return p;
  }

  private async acquire(sandboxId: string): Promise<string> {
    const { sandboxes, sessions } = this.deps.stores;
    const deadline = this.now() + this.opts.readyTimeoutMs + this.leaseMs;
    for (;;) {
      const sb = await sandboxes.get(sandboxId, this.now());
      if (!sb || sb.deletedAt !== null) throw new BayError("not_found", `sandbox not found: ${sandboxId}`);
      if (sb.status === "expired") throw expiredError(sandboxId);
      if (sb.currentSessionId) {
        const sess = await sessions.get(sb.currentSessionId);
        if (sess?.status === "ready" && sess.endpoint) return sess.endpoint;
        if (sess?.status === "starting" && (sess.leaseExpiresAt ?? 0) > this.now()) {
          if (this.now() > deadline) throw notReady(sandboxId, "another start is still in progress");
          await Bun.sleep(POLL_MS);
          continue;
        }
        // Ended, vanished, or a starter whose lease lapsed: clear the slot and retry.
        if (sess) await this.retire(sess, "failed", sess.status === "starting" ? "start abandoned" : null);
        await sandboxes.casSession(sandboxId, sb.currentSessionId, null);
        continue;
      }
      const sessionId = newId("sess", this.now());
      await sessions.insertStarting({
        id: sessionId,
        sandboxId,
        leaseOwner: this.opts.replicaId,
        leaseExpiresAt: this.now() + this.leaseMs,
        now: this.now(),
      });
      if (!(await sandboxes.casSession(sandboxId, null, sessionId, this.now()))) {
        await sessions.markEnded(sessionId, "failed", this.now(), "lost the start race");
        continue;
      }
      return this.start(sb, sessionId);
    }
  }

  /** Creates, starts and checks the container for a session this process has claimed. */
  private async start(sb: SandboxRecord, sessionId: string): Promise<string> {
    const { stores, driver, profiles, logger } = this.deps;
    const profile = profiles.forSandbox(sb.profileId);
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
      if (leaseLost) throw superseded();
    };
    let containerId: string | null = null;
    const started = this.now();
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
      };
      // An external workspace outlives sandboxes: its volume names none of them.
      const volumeLabels = { ...labels, session_id: undefined, profile_id: undefined, sandbox_id: ws.managed ? sb.id : undefined };
      await driver.createVolume(ws.volumeName, { ...volumeLabels, workspace_kind: ws.managed ? "managed" : "external" });
      stillOurs();
      containerId = await driver.createContainer(this.containerSpec(profile, sessionId, ws.volumeName, labels));
      if (!(await stores.sessions.setContainer(sessionId, containerId, this.opts.replicaId))) throw superseded();
      const endpoint = await driver.startContainer(containerId, profile.runtime_port);
      stillOurs();
      await waitForShip({
        ship: this.deps.ship,
        driver,
        containerId,
        baseUrl: endpoint.baseUrl,
        capabilities: profile.capabilities,
        deadline: started + this.opts.readyTimeoutMs,
        now: this.now,
      });
      if (!(await stores.sessions.markReady(sessionId, endpoint.baseUrl, this.now(), this.now() + profile.idle_timeout * 1000))) {
        throw superseded();
      }
      logger.info("session ready", { sandbox_id: sb.id, session_id: sessionId, ms: this.now() - started });
      return endpoint.baseUrl;
    } catch (e) {
      const ours = await this.cleanupFailedStart(sb.id, sessionId, containerId, e);
      // A stop, delete, expiry or takeover ended this start: that, not the engine's complaint, is the answer.
      throw ours ? asStartError(e, profile.image) : superseded();
    } finally {
      clearInterval(renew);
    }
  }

  private containerSpec(profile: Profile, sessionId: string, volumeName: string, labels: ContainerSpec["labels"]): ContainerSpec {
    return {
      name: `bay-${labels.sandbox_id}-${sessionId.slice(-8)}`,
      image: profile.image,
      runtimePort: profile.runtime_port,
      // Ship's own upload cap follows Bay's, so raising Bay's limit is not silently capped inside.
      env: { SHIP_MAX_UPLOAD_BYTES: String(this.opts.maxUploadBytes), ...resolveProfileEnv(profile.env, this.opts.hostEnv ?? {}) },
      labels,
      cpus: profile.cpus,
      memoryMb: profile.memory_mb,
      pidsLimit: profile.pids_limit,
      volumeName,
      ...(profile.network ? { network: profile.network } : {}),
      blockPrivateEgress: profile.block_private_egress,
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
  private async cleanupFailedStart(sandboxId: string, sessionId: string, containerId: string | null, cause: unknown): Promise<boolean> {
    const { stores, logger } = this.deps;
    const message = errorMessage(cause);
    await this.destroyContainers(sessionId, containerId);
    const ended = await stores.sessions.markEnded(sessionId, "failed", this.now(), message).catch(() => false);
    const freed = await stores.sandboxes.casSession(sandboxId, sessionId, null).catch(() => false);
    if (!ended) {
      logger.info("start superseded", { sandbox_id: sandboxId, session_id: sessionId });
      return false;
    }
    logger.warn("session start failed", { sandbox_id: sandboxId, session_id: sessionId, error: message });
    if (freed) await stores.sandboxes.setLastError(sandboxId, message).catch(() => {});
    return true;
  }

  /** Removes every container of a sandbox (used once it is deleted). */
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
  }

  /** Removes a session's container, also one whose id we never learned (create answered but we lost it). */
  private async destroyContainers(sessionId: string, containerId: string | null): Promise<void> {
    const { driver, logger } = this.deps;
    try {
      if (containerId) await driver.destroyContainer(containerId);
      for (const c of await driver.listContainers({ session_id: sessionId, instance_id: this.opts.instanceId })) {
        await driver.destroyContainer(c.id);
      }
    } catch (e) {
      // Reconcile removes it later: it carries our labels and no live session.
      logger.warn("could not remove container of failed session", { session_id: sessionId, error: errorMessage(e) });
    }
  }

  /** Ends a session and removes its container. */
  private async retire(sess: SessionRecord, status: "failed" | "stopped", error: string | null): Promise<void> {
    await this.destroyContainers(sess.id, sess.containerId);
    await this.deps.stores.sessions.markEnded(sess.id, status, this.now(), error);
  }

  /** Ends a session by id (if it is still active) and removes its container. */
  async endSession(sessionId: string | null, status: "failed" | "stopped"): Promise<void> {
    if (!sessionId) return;
    const sess = await this.deps.stores.sessions.get(sessionId);
    if (sess) await this.retire(sess, status, null);
  }

  /**
   * Ends an active session for the reaper or reconciler: the session is ended
   * first (a compare-and-set on its status, so of several replicas one wins and
   * a start in flight fails its markReady), then its containers go and the
   * sandbox's slot is released if it still names this session. Container removal
   * failures are left to the next reconcile. True when this caller ended it.
   */
  async reclaim(sess: SessionRecord, status: "failed" | "stopped", reason: string | null): Promise<boolean> {
    const { sandboxes, sessions } = this.deps.stores;
    const won = await sessions.markEnded(sess.id, status, this.now(), reason);
    await this.destroyContainers(sess.id, sess.containerId);
    await sandboxes.casSession(sess.sandboxId, sess.id, null);
    return won;
  }

  /** Stops the sandbox's session (if any): compute goes, the workspace stays. */
  async stop(sandboxId: string): Promise<void> {
    const { sandboxes, sessions } = this.deps.stores;
    const sb = await sandboxes.get(sandboxId, this.now());
    if (!sb?.currentSessionId) return;
    const sess = await sessions.get(sb.currentSessionId);
    // End it first, so a start in flight sees markReady fail and cleans up after itself.
    if (sess) await this.retire(sess, "stopped", null);
    await sandboxes.casSession(sandboxId, sb.currentSessionId, null);
  }

  /**
   * Called when a proxied call could not reach the Ship: if its container is no
   * longer running, the session is ended so the next ensureRunning starts a new one.
   * Returns true when the session was found dead.
   */
  async checkDead(sandboxId: string, endpoint: string): Promise<boolean> {
    const { sandboxes, sessions } = this.deps.stores;
    const sb = await sandboxes.get(sandboxId, this.now());
    if (!sb?.currentSessionId) return true;
    const sess = await sessions.get(sb.currentSessionId);
    if (!sess || sess.endpoint !== endpoint) return true;
    const state = sess.containerId ? (await this.deps.driver.containerStatus(sess.containerId)).state : "missing";
    if (state === "running" && (await this.deps.ship.isHealthy(endpoint))) return false;
    await this.retire(sess, "failed", `container ${state}`);
    await sandboxes.casSession(sandboxId, sess.id, null);
    return true;
  }
}

const superseded = () =>
  new BayError("conflict", "the sandbox was stopped, deleted or expired while it was starting", { details: { reason: "superseded" } });

/** Start failures that keep their own code; any other is the runtime not becoming ready. */
const KEEP_ON_START = new Set(["driver_unavailable", "ship_error", "session_not_ready", "timeout", "conflict"]);

/**
 * A start that failed inside the engine (image missing, container died at
 * once, unknown runtime, a network that does not exist, a name clash) is the
 * runtime not becoming ready: 503 with Retry-After, the engine's reason kept in
 * the message and details. An engine that cannot be reached, a Ship that
 * answered wrongly, and a start that was superseded keep their own codes.
 */
function asStartError(e: unknown, image: string): unknown {
  if (e instanceof BayError && KEEP_ON_START.has(e.code)) return e;
  if (!(e instanceof BayError)) {
    return new BayError("session_not_ready", "sandbox runtime failed to start", { retryAfter: 2, cause: e, details: { image } });
  }
  const missingImage = e.details.image !== undefined;
  const message = missingImage
    ? `sandbox runtime image ${image} is not present on the Docker host; build it with \`bun run image:build\``
    : `sandbox runtime failed to start: ${e.message}`;
  return new BayError("session_not_ready", message, { retryAfter: 2, cause: e, details: { ...e.details, image } });
}

export const expiredError = (id: string) => new BayError("sandbox_expired", `sandbox has expired: ${id}`, { details: { sandbox_id: id } });

const notReady = (id: string, why: string) =>
  new BayError("session_not_ready", `sandbox runtime is not ready: ${why}`, { retryAfter: 2, details: { sandbox_id: id } });
