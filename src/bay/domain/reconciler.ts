/**
 * Reconcile: brings Docker and the database back into agreement after a crash,
 * a Bay restart, a Docker restart or a lost race. Runs at start and on every
 * reaper beat, on every replica at once; each step is a compare-and-set in the
 * database or an idempotent removal, so running it twice changes nothing.
 *
 * Conservative by construction: it only ever lists objects carrying this
 * installation's `instance_id` label (the driver adds its own managed-by label
 * to every filter), leaves containers without a `session_id` label alone, and
 * never touches a container whose `starting` session still holds its lease.
 * Workspace data-plane helpers (no session) are removed once they are far older
 * than any data-plane call can live (leftovers of a Bay that died mid-call), or
 * at once when their workspace is deleted (they would hold its volume).
 */
import type { ContainerInfo, Driver } from "../drivers/driver.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { BayMetrics } from "../observability/bay-metrics.ts";
import type { Stores } from "../store/index.ts";
import { runBackgroundStep } from "./background-step.ts";
import type { SessionRecord } from "../store/session-store.ts";
import type { SessionManager } from "./session-manager.ts";

/** Older than this, a workspace helper belongs to no call (a download's lasts at most 10 min). */
export const STALE_HELPER_MS = 30 * 60_000;

export interface ReconcilerDeps {
  stores: Stores;
  driver: Driver;
  sessions: SessionManager;
  logger: Logger;
  /** This installation's label value: nothing else is ever touched. */
  instanceId: string;
  metrics?: Pick<BayMetrics, "reconciled">;
  now?: () => number;
}

/** What one pass did, for logs and tests. */
export interface ReconcileReport {
  /** Sessions ended because their starter's lease lapsed. */
  abandonedStarts: number;
  /** Ready sessions ended because their container is gone or stopped. */
  deadSessions: number;
  /** Active sessions ended because their sandbox is deleted, expired or moved on. */
  strandedSessions: number;
  /** Containers removed because no active session owns them. */
  orphanContainers: number;
  /** Volumes removed because their workspace row is deleted or absent. */
  orphanVolumes: number;
  /** Workspace data-plane helpers left behind by a Bay that died mid-call, or of a deleted workspace. */
  staleHelpers: number;
  /** Steps skipped because the engine or database did not answer. */
  errors: number;
}

export class Reconciler {
  private readonly now: () => number;
  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** One full pass. Never throws: a step that fails is logged and retried next time. */
  async runOnce(): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      abandonedStarts: 0,
      deadSessions: 0,
      strandedSessions: 0,
      orphanContainers: 0,
      orphanVolumes: 0,
      staleHelpers: 0,
      errors: 0,
    };
    const step = (name: string, fn: () => Promise<void>) => runBackgroundStep(this.deps.logger, "reconcile", report, name, fn);
    await step("abandoned starts", () => this.endAbandonedStarts(report));
    await step("sessions and containers", () => this.reconcileSessions(report));
    await step("stale helpers", () => this.removeStaleHelpers(report));
    await step("volumes", () => this.removeOrphanVolumes(report));
    await step("runtime sockets", async () => {
      const swept = (await this.deps.driver.sweepSockets?.()) ?? 0;
      if (swept > 0) this.deps.logger.info("socket directories of gone containers removed", { count: swept });
    });
    const acted =
      report.abandonedStarts +
      report.deadSessions +
      report.strandedSessions +
      report.orphanContainers +
      report.orphanVolumes +
      report.staleHelpers;
    if (acted > 0) this.deps.logger.info("reconciled", { ...report });
    this.deps.metrics?.reconciled(report);
    return report;
  }

  /** `starting` sessions whose lease lapsed: the Bay that held it died mid-start. */
  private async endAbandonedStarts(report: ReconcileReport): Promise<void> {
    for (const sess of await this.deps.stores.sessions.listStaleStarting(this.now())) {
      if (await this.deps.sessions.end(sess, "failed", "start abandoned: lease lapsed")) {
        report.abandonedStarts++;
        this.deps.logger.info("abandoned start cleaned up", { sandbox_id: sess.sandboxId, session_id: sess.id });
      }
    }
  }

  /**
   * The order of reads matters. Containers are listed before sessions are read:
   * a container's session row always exists before the container, and an ended
   * session never becomes active again, so a listed container whose session is
   * not active is an orphan. Containers are listed again after the sessions are
   * read, so a ready session whose container is missing from that list is dead.
   */
  private async reconcileSessions(report: ReconcileReport): Promise<void> {
    const { driver, stores, sessions, logger, instanceId } = this.deps;
    const before = await driver.listContainers({ instance_id: instanceId });
    const active = await stores.sessions.listActive();
    const current = await stores.sandboxes.liveSessionIds(this.now());
    const after = await driver.listContainers({ instance_id: instanceId });
    const byId = new Map(after.map((c) => [c.id, c]));
    const activeById = new Map(active.map((s) => [s.id, s]));

    for (const sess of active) {
      if (sess.status !== "ready") continue; // starting: guarded by its lease (see endAbandonedStarts)
      if (!current.has(sess.id)) {
        if (await sessions.end(sess, "stopped", "sandbox deleted, expired or stopped")) {
          report.strandedSessions++;
          logger.info("stranded session ended", { sandbox_id: sess.sandboxId, session_id: sess.id });
        }
        continue;
      }
      const state = await this.containerState(sess, byId);
      if (state === "running") continue;
      if (await sessions.end(sess, "failed", `container ${state}`)) {
        report.deadSessions++;
        logger.info("dead session ended; the next call starts a new one", {
          sandbox_id: sess.sandboxId,
          session_id: sess.id,
          container: state,
        });
      }
    }

    for (const c of before) {
      if (!this.isOrphan(c, activeById)) continue;
      await driver.destroyContainer(c.id);
      report.orphanContainers++;
      logger.info("orphan container removed", { container_id: c.id, sandbox_id: c.labels.sandbox_id, session_id: c.labels.session_id });
    }
  }

  /** A ready session's container state, confirmed by an inspect before it is called dead. */
  private async containerState(sess: SessionRecord, listed: Map<string, ContainerInfo>): Promise<string> {
    if (!sess.containerId) return "missing";
    const seen = listed.get(sess.containerId);
    if (seen?.state === "running") return "running";
    return (await this.deps.driver.containerStatus(sess.containerId)).state;
  }

  private isOrphan(c: ContainerInfo, active: Map<string, SessionRecord>): boolean {
    const sessionId = c.labels.session_id;
    // Not a session container (e.g. an archive helper) or not quite ours: leave it.
    if (!sessionId || c.labels.instance_id !== this.deps.instanceId) return false;
    const sess = active.get(sessionId);
    if (!sess) return true;
    // A second container for a ready session (a create whose answer was lost).
    return sess.status === "ready" && sess.containerId !== null && sess.containerId !== c.id;
  }

  /**
   * Workspace helpers of this installation older than any call could keep one,
   * and helpers of a deleted workspace at any age: no call on it can succeed,
   * and the helper would hold the workspace's volume (removed in the next step)
   * until it is stale.
   */
  private async removeStaleHelpers(report: ReconcileReport): Promise<void> {
    const { driver, stores, logger, instanceId } = this.deps;
    const cutoff = this.now() - STALE_HELPER_MS;
    for (const c of await driver.listContainers({ instance_id: instanceId })) {
      if (c.labels.role !== "workspace-helper" || c.labels.session_id) continue;
      const stale = c.createdAt !== undefined && c.createdAt <= cutoff;
      const workspaceId = c.labels.workspace_id;
      let deleted = false;
      if (!stale && workspaceId !== undefined) {
        // Rows are written before volumes and helpers, so a missing row is a deleted workspace.
        const ws = await stores.workspaces.get(workspaceId);
        deleted = ws === null || ws.deletedAt !== null;
      }
      if (!stale && !deleted) continue;
      await driver.destroyContainer(c.id);
      report.staleHelpers++;
      logger.info(stale ? "stale workspace helper removed" : "helper of a deleted workspace removed", {
        container_id: c.id,
        workspace_id: workspaceId,
      });
    }
  }

  /** Our volumes whose workspace row is deleted or absent. Rows are written before volumes are created. */
  private async removeOrphanVolumes(report: ReconcileReport): Promise<void> {
    const { driver, stores, logger, instanceId } = this.deps;
    const volumes = await driver.listVolumes({ instance_id: instanceId });
    if (volumes.length === 0) return;
    const live = await stores.workspaces.liveVolumeNames();
    for (const v of volumes) {
      if (live.has(v.name) || v.labels.instance_id !== instanceId) continue;
      try {
        await driver.removeVolume(v.name);
        report.orphanVolumes++;
        logger.info("orphan volume removed", { volume: v.name, workspace_id: v.labels.workspace_id });
      } catch (e) {
        // In use by a container that is still being removed: next beat.
        logger.debug("orphan volume not removed yet", { volume: v.name, error: errorMessage(e) });
      }
    }
  }
}
