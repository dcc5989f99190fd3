/**
 * The reaper: on a fixed beat, reclaims idle sessions, expires sandboxes whose
 * TTL passed, applies the expired-workspace policy, purges old idempotency keys,
 * runs reconcile and a warm-pool pass. Every replica runs one; they coordinate only through the
 * database: each reclaim is won by one compare-and-set (`releaseIdle`,
 * `markExpired`, `markDeleted`), so the same work never runs twice.
 */
import type { Driver } from "../drivers/driver.ts";
import type { Logger } from "../logger.ts";
import type { BayMetrics } from "../observability/bay-metrics.ts";
import type { Stores } from "../store/index.ts";
import { runBackgroundStep } from "./background-step.ts";
import type { Reconciler } from "./reconciler.ts";
import { removeVolumeQuietly } from "./sandbox-manager.ts";
import type { SessionManager } from "./session-manager.ts";

export interface ReaperOptions {
  /** Seconds between beats (`lifecycle.reaper_interval`). */
  intervalSeconds: number;
  /** What happens to the managed workspace of an expired sandbox (`lifecycle.expired_workspace`). */
  expiredWorkspace: "keep" | "delete";
}

export interface ReaperDeps {
  stores: Stores;
  driver: Driver;
  sessions: SessionManager;
  reconciler: Reconciler;
  logger: Logger;
  metrics?: Pick<BayMetrics, "reaperBeat">;
  /** The warm pool: its members are retired and refilled on the beat too (also when every size is 0, for leftovers). */
  pool?: { maintain(): Promise<unknown> };
  now?: () => number;
}

/** What one beat did. */
export interface ReapReport {
  idleReclaimed: number;
  expired: number;
  workspacesDeleted: number;
  idempotencyPurged: number;
  errors: number;
}

export class Reaper {
  private readonly now: () => number;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** The beat in progress; beats never overlap within one process. */
  private running: Promise<ReapReport> | null = null;

  constructor(
    private readonly deps: ReaperDeps,
    private readonly opts: ReaperOptions,
  ) {
    this.now = deps.now ?? Date.now;
  }

  /** Starts beating every `intervalSeconds`. Idempotent. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce(), Math.max(50, this.opts.intervalSeconds * 1000));
    this.timer.unref?.();
  }

  /** Stops beating and waits for a beat in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  /** One beat; a call while a beat runs joins it. Never throws. */
  runOnce(): Promise<ReapReport> {
    this.running ??= this.beat().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async beat(): Promise<ReapReport> {
    const report: ReapReport = { idleReclaimed: 0, expired: 0, workspacesDeleted: 0, idempotencyPurged: 0, errors: 0 };
    const step = (name: string, fn: () => Promise<void>) => runBackgroundStep(this.deps.logger, "reaper", report, name, fn);
    await step("ttl expiry", () => this.expireSandboxes(report));
    await step("idle reclaim", () => this.reclaimIdle(report));
    if (this.opts.expiredWorkspace === "delete") {
      await step("expired workspaces", () => this.deleteExpiredWorkspaces(report));
    }
    await step("idempotency purge", async () => {
      report.idempotencyPurged = await this.deps.stores.idempotency.purgeExpired(this.now());
    });
    this.deps.metrics?.reaperBeat(report);
    const rec = await this.deps.reconciler.runOnce();
    report.errors += rec.errors;
    // After reconcile: members whose container died are stale now, and retired here.
    if (this.deps.pool) await this.deps.pool.maintain();
    return report;
  }

  /** Sessions idle past their profile's idle_timeout are stopped; the sandbox goes back to idle. */
  private async reclaimIdle(report: ReapReport): Promise<void> {
    const { stores, sessions, logger } = this.deps;
    const now = this.now();
    for (const sb of await stores.sandboxes.listIdlePastDeadline(now)) {
      const sess = sb.currentSessionId ? await stores.sessions.get(sb.currentSessionId) : null;
      if (sess?.status !== "ready") continue;
      // The one compare-and-set that makes this reclaim happen once across replicas.
      if (!(await stores.sandboxes.releaseIdle(sb.id, sess.id, now))) continue;
      await sessions.end(sess, "stopped", "idle timeout");
      report.idleReclaimed++;
      logger.info("session stopped", { reason: "idle", sandbox_id: sb.id, session_id: sess.id, owner: sb.owner });
    }
    // Covers left by a replica that died mid-call: past their time they hold nothing back.
    await stores.sandboxes.purgeCallCovers(now);
  }

  /** Sandboxes past their TTL become expired: compute goes, the row stays (GET and DELETE still work). */
  private async expireSandboxes(report: ReapReport): Promise<void> {
    const { stores, sessions, logger } = this.deps;
    const now = this.now();
    for (const candidate of await stores.sandboxes.listNewlyExpired(now)) {
      if (!(await stores.sandboxes.markExpired(candidate.id, now))) continue;
      report.expired++;
      logger.info("sandbox expired", { sandbox_id: candidate.id, owner: candidate.owner });
      // Re-read: a start may have claimed the slot after the list (no claim succeeds from now on).
      const sb = await stores.sandboxes.get(candidate.id, now);
      const sess = sb?.currentSessionId ? await stores.sessions.get(sb.currentSessionId) : null;
      if (sess) await sessions.end(sess, "stopped", "sandbox expired");
      else if (sb?.currentSessionId) await stores.sandboxes.releaseCurrentSession(sb.id, sb.currentSessionId);
      // A crash here is fine: reconcile ends sessions of expired sandboxes, and the
      // delete policy below works from the database, not from this list.
    }
  }

  /** `expired_workspace: delete`: managed workspaces of expired sandboxes are deleted with their volume. */
  private async deleteExpiredWorkspaces(report: ReapReport): Promise<void> {
    const { stores, driver, logger } = this.deps;
    for (const w of await stores.sandboxes.listExpiredManagedWorkspaces()) {
      const sb = await stores.sandboxes.get(w.sandboxId, this.now());
      // Its container must be gone first, or the volume is still in use.
      if (sb?.currentSessionId) continue;
      if (!(await stores.workspaces.markDeleted(w.workspaceId, this.now()))) continue;
      await removeVolumeQuietly(driver, w.volumeName, logger);
      report.workspacesDeleted++;
      logger.info("workspace of expired sandbox deleted", { sandbox_id: w.sandboxId, workspace_id: w.workspaceId });
    }
  }
}
