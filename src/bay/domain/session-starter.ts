/**
 * Starting a session: claiming the sandbox's current session (a compare-and-set,
 * so across replicas exactly one process starts it), then creating and starting
 * its container under a renewed lease, waiting for its Ship to answer /meta as
 * this session, and marking it ready. A start that fails is undone here.
 *
 * Every session has its own secret, minted here and handed to its container
 * alone (on stdin at start).
 */
import { randomBytes } from "node:crypto";
import type { ContainerShape, ContainerSpec, Driver } from "../drivers/driver.ts";
import { BayError } from "../errors.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { BayMetrics } from "../observability/bay-metrics.ts";
import type { ShipClient, ShipTarget } from "../runtime/ship-client.ts";
import type { Stores } from "../store/index.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import { CREDENTIALS_ENV } from "../../protocol/ship/constants.ts";
import { newId } from "./ids.ts";
import { supersededError } from "./lifecycle.ts";
import { type Profile, type ProfileRegistry, resolveProfileEnv } from "./profiles.ts";
import { waitForShip, warmPythonKernel } from "./readiness.ts";
import { removeVolumeQuietly } from "./sandbox-manager.ts";

/** A container's name: `bay-` and 32 random hex digits. */
const containerName = (): string => `bay-${crypto.randomUUID().replaceAll("-", "")}`;

/** A ready session: where its Ship answers, with what secret, in which container. */
export interface SessionHandle extends ShipTarget {
  sandboxId: string;
  containerId: string | null;
}

export interface SessionStarterOptions {
  instanceId: string;
  /** Unique per Bay process; names lease holders. */
  replicaId: string;
  readyTimeoutMs: number;
  leaseMs: number;
  hostEnv?: Record<string, string | undefined>;
  /** Bay's upload limit, passed to Ship. */
  maxUploadBytes: number;
  /** Rotation of every container's log. */
  logs?: { maxSizeMb: number; maxFiles: number };
  /** Sessions running or starting at once, all owners together. */
  maxLiveSessions?: number;
  /** Sessions one owner may be starting at once. */
  maxStartsPerOwner?: number;
  now: () => number;
}

export interface SessionStarterDeps {
  stores: Stores;
  driver: Driver;
  ship: ShipClient;
  profiles: ProfileRegistry;
  logger: Logger;
  metrics?: Pick<BayMetrics, "sessionStarted">;
}

/** What a start needs of the session manager: its trust in checked sessions and its container removal. */
export interface SessionStartHooks {
  /** A session whose Ship this start has checked needs no second /meta check in this process. */
  markVerified(sessionId: string): void;
  /** Removes a session's container, also one whose id was never learned. */
  removeContainers(sessionId: string, containerId: string | null): Promise<void>;
}

/** A fresh session secret: 256 random bits, base64url. */
export const mintSecret = (): string => randomBytes(32).toString("base64url");

export class SessionStarter {
  private readonly now: () => number;

  constructor(
    private readonly deps: SessionStarterDeps,
    private readonly opts: SessionStarterOptions,
    private readonly hooks: SessionStartHooks,
  ) {
    this.now = opts.now;
  }

  /**
   * Inserts a `starting` session leased to this process and claims it as the
   * sandbox's current session. Null when another caller claimed the sandbox
   * first (the caller reads the sandbox again); throws when a cap refuses it.
   */
  async claim(sb: SandboxRecord): Promise<{ sessionId: string; secret: string } | null> {
    const { sandboxes, sessions } = this.deps.stores;
    const sandboxId = sb.id;
    const sessionId = newId("sess", this.now());
    const secret = mintSecret();
    const inserted = await sessions.insertStarting({
      id: sessionId,
      sandboxId,
      secret,
      leaseOwner: this.opts.replicaId,
      leaseExpiresAt: this.now() + this.opts.leaseMs,
      now: this.now(),
      ...(this.opts.maxLiveSessions ? { maxActive: this.opts.maxLiveSessions } : {}),
      ...(this.opts.maxStartsPerOwner ? { maxStartingPerOwner: this.opts.maxStartsPerOwner } : {}),
    });
    if (!inserted) throw await this.capacityError(sandboxId);
    if (!(await sandboxes.claimCurrentSession(sandboxId, sessionId, this.now()))) {
      await sessions.end(sessionId, "failed", this.now(), "lost the start race");
      return null;
    }
    return { sessionId, secret };
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

  /** See SessionManager.startMember. */
  async startMember(sandboxId: string, sessionId: string, secret: string): Promise<SessionHandle> {
    const sb = await this.deps.stores.sandboxes.get(sandboxId, this.now());
    if (!sb || sb.deletedAt !== null || sb.currentSessionId !== sessionId) throw supersededError();
    return this.start(sb, sessionId, secret, "member");
  }

  /**
   * Creates, starts and checks the container for a session this process has
   * claimed. A `member` start (warm pool) also warms the Python kernel before it
   * is marked ready, and arms no idle deadline.
   */
  async start(sb: SandboxRecord, sessionId: string, secret: string, kind: "cold" | "member" = "cold"): Promise<SessionHandle> {
    const { stores, driver, profiles, logger } = this.deps;
    const profile = profiles.forSandbox(sb.profileId);
    const member = kind === "member";
    // The lease is renewed while this start runs; once it is lost (taken over
    // after a stall, or the session was ended) the start stops at its next step.
    let leaseLost = false;
    const renew = setInterval(
      () => {
        stores.sessions
          .renewLease(sessionId, this.opts.replicaId, this.now() + this.opts.leaseMs)
          .then((held) => {
            if (!held) leaseLost = true;
          })
          .catch(() => {});
      },
      Math.max(500, this.opts.leaseMs / 3),
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
      const volumeLabels = {
        ...labels,
        session_id: undefined,
        profile_id: undefined,
        sandbox_id: ws.managed ? sb.id : undefined,
        workspace_kind: ws.managed ? "managed" : "external",
      };
      await driver.createVolume(ws.volumeName, volumeLabels);
      stillOurs();
      containerId = await driver.createContainer({ ...this.containerSpec(profile, ws.volumeName, labels), volumeLabels });
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
      this.hooks.markVerified(sessionId);
      logger.info(member ? "warm-pool member ready" : "session ready", {
        sandbox_id: sb.id,
        session_id: sessionId,
        ms: this.now() - started,
        ...steps,
      });
      if (!member) this.deps.metrics?.sessionStarted(profile.id, "cold", "ok", this.now() - started);
      return handle;
    } catch (e) {
      // The database failed a write of this start (marking it ready, say), and whether
      // that write landed is unknown: the session may be ready, and even in use. Undoing
      // it could end a session someone has; its lease (starting) or the next call's check
      // and reconcile (ready) settle it instead. The client gets the 503 to retry.
      if (e instanceof BayError && e.code === "database_unavailable") {
        logger.warn("session start interrupted by the database; its lease and reconcile settle it", {
          sandbox_id: sb.id,
          session_id: sessionId,
          reason: e.details.reason,
        });
        throw e;
      }
      const failure = asStartError(e, profile.image);
      const ours = await this.cleanupFailedStart(sb.id, sessionId, containerId, e, failure.message);
      await this.removeVolumeIfDeleted(sb.workspaceId);
      if (ours && !member) this.deps.metrics?.sessionStarted(profile.id, "cold", "failed", this.now() - started);
      // A stop, delete, expiry or takeover ended this start: that, not the engine's complaint, is the answer.
      throw ours ? failure : supersededError();
    } finally {
      clearInterval(renew);
    }
  }

  /** The container a session of `profile` gets, less what each has of its own (name, labels, volume): pool-fingerprint.ts. */
  containerShape(profile: Profile): ContainerShape {
    return {
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
      cpus: profile.cpus,
      memoryMb: profile.memory_mb,
      pidsLimit: profile.pids_limit,
      network: profile.network,
      ...(profile.runtime ? { runtime: profile.runtime } : {}),
      readOnlyRootfs: profile.read_only_rootfs,
      tmpfsMb: profile.tmpfs_mb,
    };
  }

  private containerSpec(profile: Profile, volumeName: string, labels: ContainerSpec["labels"]): ContainerSpec {
    // Random, naming no sandbox: Docker's resolver answers container names to every container
    // on a shared network (reverse lookups too), so a name with the id told it to other tenants
    // (review s86). The labels say whose it is.
    return { ...this.containerShape(profile), name: containerName(), labels, volumeName };
  }

  /**
   * After a failed start: a workspace deleted meanwhile may have had its volume removed
   * before this start's container mounted it, and the engine then made it again for the
   * mount. Its containers are gone now, so it goes at once (reconcile would, later: it
   * carries Bay's labels).
   */
  private async removeVolumeIfDeleted(workspaceId: string): Promise<void> {
    const ws = await this.deps.stores.workspaces.get(workspaceId).catch(() => null);
    if (ws && ws.deletedAt !== null) await removeVolumeQuietly(this.deps.driver, ws.volumeName, this.deps.logger);
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
    await this.hooks.removeContainers(sessionId, containerId);
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
