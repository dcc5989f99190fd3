/**
 * The warm pool: per profile, `warm_pool.size` sessions started, checked and
 * warmed before any owner asks, so a create can answer `ready` at once.
 *
 * A member is a sandbox row owned by no one (`POOL_OWNER`) with its own managed
 * workspace (a fresh volume) and its own session (a fresh secret), so the
 * session machinery, reconcile and the reaper already know how to start, check
 * and clean it. The rules here:
 *
 * * **claim**: one statement hands the oldest warm member to the owner, within
 *   the owner's quotas; exactly one claimer wins each member, across replicas;
 *   from then on it is an ordinary sandbox, never a member again;
 * * **refill**: members are made only while the profile has fewer than `size`
 *   (counted in the database, so replicas never overshoot together) and Bay's
 *   live-session cap has room, at most `concurrency` starts at once per process;
 *   a profile whose starts fail backs off;
 * * **retire**: stale members (their session ended: a failed or abandoned start,
 *   a dead container), members older than `max_age_seconds`, members made from
 *   something else than their profile makes now (pool-fingerprint.ts: a profile
 *   changed across a restart, an image rebuilt; never handed out either), and
 *   members beyond the size are tombstoned with their workspace, compare-and-set
 *   against a claim, then their container and volume go.
 *
 * Docker labels cannot change, so a member's container and volume are labelled
 * at birth with its sandbox, session and workspace ids (true before and after the
 * claim), `pool=<profile>` and an empty owner; reconcile keys on session and
 * workspace rows, never on the owner, so it treats both states alike.
 */
import type { Driver } from "../drivers/driver.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { BayMetrics, WarmPoolStats } from "../observability/bay-metrics.ts";
import type { Claim } from "../store/idempotency-store.ts";
import type { Stores } from "../store/index.ts";
import { configKey, type PoolMember } from "../store/pool-store.ts";
import { poolFingerprint } from "./pool-fingerprint.ts";
import { PoolStarts } from "./pool-starts.ts";
import type { Profile, ProfileRegistry } from "./profiles.ts";
import { removeVolumeQuietly } from "./sandbox-manager.ts";
import type { SessionManager } from "./session-manager.ts";

export interface PoolManagerDeps {
  stores: Stores;
  sessions: SessionManager;
  driver: Driver;
  profiles: ProfileRegistry;
  logger: Logger;
  metrics?: Pick<BayMetrics, "sessionStarted">;
  now?: () => number;
}

export interface PoolManagerOptions {
  /** Names this process as the lease holder of the member starts it runs. */
  replicaId: string;
  /** Lease of a starting member's session (as SessionManager's). */
  leaseMs?: number;
  /** Member starts this process runs at once, all profiles together. */
  concurrency: number;
  /** Bay's cap on sessions running or starting: refill never takes the last slots past it. */
  maxLiveSessions: number;
  /** size_limit_mb of a member's workspace (what a lazy create would give it). */
  workspaceSizeLimitMb: number;
  /** The claiming owner's quotas. */
  maxSandboxesPerOwner: number;
  maxWorkspacesPerOwner: number;
  /** Milliseconds between maintenance passes while a pool is configured. */
  tickMs?: number;
  /** How long a replica's mark of its configuration counts after its pass (default CONFIG_TTL_MS). */
  configTtlMs?: number;
}

/** What one maintenance pass did (logs, tests). */
export interface PoolReport {
  retired: number;
  started: number;
  warm: number;
  warming: number;
}

/** A replica's mark of its configuration counts this long after its last pass (one that died: its members are then retired). */
const CONFIG_TTL_MS = 60_000;

export class PoolManager implements WarmPoolStats {
  private readonly now: () => number;
  private readonly starts: PoolStarts;
  /** Warm members per profile at the last pass (the bay_warm_pool_size gauge). */
  private warm = new Map<string, number>();
  /** What each pooled profile makes now, as of the last pass (its image's id read then): pool-fingerprint.ts. */
  private readonly fingerprints = new Map<string, string>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private running: Promise<PoolReport> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly deps: PoolManagerDeps,
    private readonly opts: PoolManagerOptions,
  ) {
    this.now = deps.now ?? Date.now;
    this.starts = new PoolStarts(
      {
        stores: deps.stores,
        sessions: deps.sessions,
        logger: deps.logger,
        now: this.now,
        retire: (m, reason) => this.retire(m, reason),
        ended: () => this.kick(),
      },
      { ...opts, leaseMs: opts.leaseMs ?? 10_000 },
    );
  }

  /** True when some profile keeps a pool (size > 0). */
  get enabled(): boolean {
    return this.deps.profiles.list().some((p) => p.warm_pool.size > 0);
  }

  /** Warm, unclaimed members of `profile` at the last pass. */
  size(profile: string): number {
    return this.warm.get(profile) ?? 0;
  }

  /**
   * Hands a warm member of `profile` to `owner`, or null on a miss (no warm
   * member, or a quota is full: the lazy path then answers). With a size-0
   * pool nothing is asked of the database. Under an Idempotency-Key `claim`,
   * the sandbox is recorded on it in the same transaction.
   */
  async claim(owner: string, profile: Profile, ttlSeconds: number, idempotency?: Claim): Promise<string | null> {
    if (profile.warm_pool.size === 0) return null;
    // Before this process's first pass it does not know what the profile makes: a miss.
    const fingerprint = this.fingerprints.get(profile.id);
    if (fingerprint === undefined) return null;
    const { stores, logger } = this.deps;
    const now = this.now();
    const id = await stores.pool.claim(
      {
        owner,
        profileId: profile.id,
        token: crypto.randomUUID(),
        now,
        oldest: now - profile.warm_pool.max_age_seconds * 1000,
        fingerprint,
        expiresAt: ttlSeconds > 0 ? now + ttlSeconds * 1000 : null,
        idleExpiresAt: now + profile.idle_timeout * 1000,
        maxSandboxes: this.opts.maxSandboxesPerOwner,
        maxWorkspaces: this.opts.maxWorkspacesPerOwner,
        // Under an Idempotency-Key, no member is taken unless the key's claim is still this request's.
        ...(idempotency ? { fence: stores.idempotency.heldFenceNamed(idempotency) } : {}),
      },
      idempotency ? (token) => stores.idempotency.attachClaimedStatement(idempotency, token) : undefined,
    );
    if (!id) return null; // a miss changes nothing a pass could act on: the beat refills (review s102)
    this.warm.set(profile.id, Math.max(0, this.size(profile.id) - 1));
    this.deps.metrics?.sessionStarted(profile.id, "pool", "ok", this.now() - now);
    logger.info("warm-pool member claimed", { owner, sandbox_id: id, profile: profile.id });
    // The refill's first steps are database work that would run before this create's
    // answer (an embedded database blocks the event loop): start it after the answer.
    setImmediate(() => this.kick());
    return id;
  }

  /** Starts the maintenance beat (only when a pool is configured; the reaper's beat covers leftovers otherwise). */
  start(): void {
    if (this.timer || !this.enabled) return;
    this.stopped = false;
    this.timer = setInterval(() => {
      this.starts.beat();
      void this.maintain();
    }, this.beatMs);
    this.timer.unref?.();
    this.kick();
  }

  /** Stops the beat and waits for the pass and the member starts in flight; its configuration is no longer marked as running. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
    await this.starts.settled();
    if (this.fingerprints.size > 0) await this.deps.stores.pool.forgetConfigs(this.opts.replicaId).catch(() => {});
  }

  /** Resolves once the member starts in flight now have finished (tests). */
  async settle(): Promise<void> {
    await this.running?.catch(() => {});
    await this.starts.settled();
  }

  /**
   * Resolves once nothing is in flight, counting what the passes and starts in flight kick as they
   * end (a start that ends kicks a pass, which marks this replica's configurations again) (tests).
   */
  async quiesce(): Promise<void> {
    do {
      await this.settle();
      await new Promise((r) => setImmediate(r));
    } while (this.running || this.starts.inFlight > 0);
  }

  private get beatMs(): number {
    return this.opts.tickMs ?? 2_000;
  }

  /** Runs a pass soon (after a claim, or a member start ending). */
  kick(): void {
    if (this.stopped || !this.enabled) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.maintain();
  }

  /**
   * One pass: retire stale, old and surplus members, then start members up to
   * each profile's size. Every replica runs it; each step is a compare-and-set.
   * A call while a pass runs joins it. Never throws.
   */
  maintain(): Promise<PoolReport> {
    // Once stopped, nothing: a pass would mark this replica's configuration again (review s99 INFO).
    if (this.stopped) return Promise.resolve({ retired: 0, started: 0, warm: 0, warming: 0 });
    this.running ??= this.pass()
      .catch((e: unknown) => {
        this.deps.logger.warn("warm-pool pass failed; retrying on the next beat", { error: errorMessage(e) });
        return { retired: 0, started: 0, warm: 0, warming: 0 };
      })
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          // After the event loop's turn: passes kicked one after another never keep timers and I/O waiting.
          setImmediate(() => this.kick());
        }
      });
    return this.running;
  }

  private async pass(): Promise<PoolReport> {
    const report: PoolReport = { retired: 0, started: 0, warm: 0, warming: 0 };
    const { stores, profiles } = this.deps;
    const now = this.now();
    await this.readFingerprints();
    const pooled = profiles.list().filter((p) => p.warm_pool.size > 0);
    const read = pooled.filter((p) => this.fingerprints.has(p.id));
    // What every live replica runs, with the largest size kept for each configuration (this replica's included).
    const live = await stores.pool.markConfigs(
      this.opts.replicaId,
      read.map((p) => ({ profileId: p.id, fingerprint: this.fingerprints.get(p.id)!, size: p.warm_pool.size })),
      pooled.filter((p) => !this.fingerprints.has(p.id)).map((p) => p.id),
      this.opts.configTtlMs ?? CONFIG_TTL_MS,
    );
    const own = new Map<string, PoolMember[]>();
    for (const m of await stores.pool.members()) {
      const profile = profiles.find(m.profileId);
      const current = this.fingerprints.get(m.profileId);
      const mine = current !== undefined && m.fingerprint === current;
      if (m.state === "stale") {
        if (await this.retire(m, "stale")) report.retired++;
        continue;
      }
      if (mine) {
        const list = own.get(m.profileId) ?? [];
        list.push(m);
        own.set(m.profileId, list);
        continue;
      }
      // Another live replica's configuration (or this one's while its image cannot be read: its mark
      // stays until it ages): its members are its own to keep, claim and retire. A warming one's start is
      // still in someone's hands: it is judged once warm.
      if (m.state !== "warm" || live.has(configKey(m.profileId, m.fingerprint ?? ""))) continue;
      // Made in a way no live replica makes (a profile changed, Bay upgraded, an image rebuilt, a replica
      // gone): never claimed, and retired.
      if (await this.retire(m, profile ? "made in a way no replica makes now" : "profile removed")) report.retired++;
    }
    const warm = new Map<string, number>();
    for (const profile of read) {
      const current = this.fingerprints.get(profile.id)!;
      const members = own.get(profile.id) ?? [];
      const size = profile.warm_pool.size;
      // Aged members go; then surplus above the largest size a live replica keeps for this configuration
      // (the size went down; two replicas of one configuration keep the larger: review s99 M1), oldest warm first.
      let surplus = members.length - Math.max(size, live.get(configKey(profile.id, current)) ?? 0);
      for (const m of members) {
        if (m.state !== "warm") continue;
        const tooOld = now - m.createdAt > profile.warm_pool.max_age_seconds * 1000;
        if (!tooOld && surplus <= 0) continue;
        if (await this.retire(m, tooOld ? "max age" : "beyond the pool size")) report.retired++;
        if (!tooOld) surplus--;
        m.state = "stale";
      }
      const kept = members.filter((m) => m.state !== "stale");
      const warmNow = kept.filter((m) => m.state === "warm").length;
      warm.set(profile.id, warmNow);
      report.warm += warmNow;
      report.warming += kept.length - warmNow;
      // All configurations of the profile together: the sizes live replicas keep, and one more for those gone.
      let maxAll = size;
      for (const [key, liveSize] of live) if (key.startsWith(configKey(profile.id, ""))) maxAll += liveSize;
      const missing = size - kept.length;
      for (let i = 0; i < missing && !this.stopped && this.starts.canStart(profile.id, now); i++) {
        this.starts.launch(profile, current, maxAll);
        report.started++;
      }
    }
    this.warm = warm;
    // Marked again at the end: a pass that took long (retires on a slow engine) is not taken for a dead replica's.
    if (read.length > 0)
      await stores.pool.touchConfigs(
        this.opts.replicaId,
        read.map((p) => p.id),
      );
    return report;
  }

  /**
   * What each pooled profile makes now (its image's id read now, all profiles at once). A
   * profile whose image cannot be read (the engine failing, the image absent) has none this
   * pass: no claim, no refill and no retire by fingerprint until it can be (review s97 L1, L2).
   */
  private async readFingerprints(): Promise<void> {
    const { driver, sessions } = this.deps;
    const pooled = this.deps.profiles.list().filter((p) => p.warm_pool.size > 0);
    const ids = await Promise.all(pooled.map((p) => driver.imageId(p.image).catch(() => null)));
    this.fingerprints.clear();
    pooled.forEach((profile, i) => {
      const imageId = ids[i];
      if (imageId)
        this.fingerprints.set(profile.id, poolFingerprint(profile, driver.containerRecipe(sessions.containerShape(profile)), imageId));
    });
  }

  /**
   * Tombstones a member with its workspace (only while it is still an unclaimed
   * member: a claim that came first wins), then removes its containers and
   * volume; what cannot be removed now, reconcile removes later. True when this
   * call retired it.
   */
  private async retire(m: Pick<PoolMember, "id" | "workspaceId" | "containerId">, reason: string): Promise<boolean> {
    const { stores, sessions, driver, logger } = this.deps;
    if (!(await stores.sandboxes.tombstone(m.id, this.now(), { poolMemberOnly: true }))) return false;
    if (m.containerId) await driver.destroyContainer(m.containerId).catch(() => {});
    await sessions.removeSandboxContainers(m.id);
    // A member's workspace is managed and its volume is named after it.
    await removeVolumeQuietly(driver, m.workspaceId, logger);
    logger.info("warm-pool member retired", { sandbox_id: m.id, reason });
    return true;
  }
}
