/**
 * The warm pool's member starts in this process (pool-manager.ts decides how
 * many are missing; this runs them): at most `concurrency` at once, all
 * profiles together; none for a profile whose starts failed until its backoff
 * is over, nor for one whose last member was refused as full until the next
 * beat. A start makes the member's rows (PoolStore.insertMember: the database
 * refuses past the pool's size, the cap across configurations and Bay's
 * session cap), then starts, checks and warms its session.
 */
import { errorMessage, type Logger } from "../logger.ts";
import type { Stores } from "../store/index.ts";
import type { PoolMember } from "../store/pool-store.ts";
import { newId } from "./ids.ts";
import type { Profile } from "./profiles.ts";
import { mintSecret, type SessionManager } from "./session-manager.ts";

export interface PoolStartsDeps {
  stores: Stores;
  sessions: SessionManager;
  logger: Logger;
  now: () => number;
  /** Tombstones what a failed start left and removes its container and volume (PoolManager's retire). */
  retire(m: Pick<PoolMember, "id" | "workspaceId" | "containerId">, reason: string): Promise<boolean>;
  /** A start ended having made something (warm or failed): room was made, the next pass runs at once. */
  ended(): void;
}

export interface PoolStartsOptions {
  /** Names this process as the lease holder of the member starts it runs. */
  replicaId: string;
  /** Lease of a starting member's session. */
  leaseMs: number;
  /** Member starts this process runs at once, all profiles together. */
  concurrency: number;
  /** Bay's cap on sessions running or starting. */
  maxLiveSessions: number;
  /** size_limit_mb of a member's workspace. */
  workspaceSizeLimitMb: number;
}

const MAX_BACKOFF_MS = 60_000;

export class PoolStarts {
  /** Member starts in flight in this process. */
  private readonly running = new Set<Promise<void>>();
  private readonly backoff = new Map<string, { failures: number; until: number }>();
  /** Profiles whose last member was refused as full (its pool, its configurations, Bay's session cap): no start until the next beat. */
  private readonly full = new Set<string>();

  constructor(
    private readonly deps: PoolStartsDeps,
    private readonly opts: PoolStartsOptions,
  ) {}

  /** Starts in flight now. */
  get inFlight(): number {
    return this.running.size;
  }

  /** A beat: room may have been made since (a session ended, a member claimed elsewhere), so each profile tries again once. */
  beat(): void {
    this.full.clear();
  }

  /** Resolves once the starts in flight now have ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  canStart(profileId: string, now: number): boolean {
    if (this.running.size >= this.opts.concurrency) return false;
    if (this.full.has(profileId)) return false;
    // A wait past the longest backoff is a clock that stepped back: over (review s102).
    const until = this.backoff.get(profileId)?.until ?? 0;
    return until <= now || until - now > MAX_BACKOFF_MS;
  }

  /**
   * Starts one member of `profile`, made as `fingerprint`, in the background; its slot bounds
   * the concurrency. `maxAll` bounds the members of all the profile's configurations together.
   * A start that ended (warm or failed) makes room: `ended` runs the next pass at once. One
   * refused as full does not: the pass would launch it again, refused again, without end (review s101).
   */
  launch(profile: Profile, fingerprint: string, maxAll: number): void {
    const run = this.start(profile, fingerprint, maxAll)
      .catch(() => true)
      .then((attempted) => {
        this.running.delete(run);
        if (attempted) this.deps.ended();
      });
    this.running.add(run);
  }

  /** False when the member was refused as full (nothing was made). */
  private async start(profile: Profile, fingerprint: string, maxAll: number): Promise<boolean> {
    const { stores, sessions, logger } = this.deps;
    const now = this.deps.now();
    const member = {
      fingerprint,
      sandboxId: newId("sandbox", now),
      workspaceId: newId("ws", now),
      sessionId: newId("sess", now),
      profileId: profile.id,
      secret: mintSecret(),
      sizeLimitMb: this.opts.workspaceSizeLimitMb,
      leaseOwner: this.opts.replicaId,
      leaseExpiresAt: now + this.opts.leaseMs,
      now,
    };
    try {
      // Full (another replica filled it, or Bay is at its session cap): nothing to do until the next beat.
      if (!(await stores.pool.insertMember(member, profile.warm_pool.size, this.opts.maxLiveSessions, maxAll))) {
        this.full.add(profile.id);
        return false;
      }
      await sessions.startMember(member.sandboxId, member.sessionId, member.secret);
      this.backoff.delete(profile.id);
    } catch (e) {
      const failures = (this.backoff.get(profile.id)?.failures ?? 0) + 1;
      const wait = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1));
      this.backoff.set(profile.id, { failures, until: this.deps.now() + wait });
      logger.warn("warm-pool member failed to start; backing off", {
        profile: profile.id,
        sandbox_id: member.sandboxId,
        retry_in_ms: wait,
        error: errorMessage(e),
      });
      // Its start cleaned up its container; the rows and volume go now rather than on the next pass.
      await this.deps.retire({ id: member.sandboxId, workspaceId: member.workspaceId, containerId: null }, "start failed").catch(() => {});
    }
    return true;
  }
}
