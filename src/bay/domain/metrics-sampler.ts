/**
 * The metrics history: every `intervalSeconds`, one sample of each running sandbox's
 * CPU, memory and disk, stored in the database (E2B's getMetrics and
 * GET /v1/sandboxes/{id}/metrics/history read them) and kept `historySeconds`.
 *
 * Cheap by construction: a running container is read once per interval with one
 * engine reading that answers at once (no second reading a second later); its CPU
 * share is worked out from its CPU time against this sampler's previous reading of
 * the same session, so a session's first interval stores nothing. The disk is the
 * workspace's cached figure when fresh, else the last one this sampler measured;
 * at most DISK_MEASURES_PER_TICK workspaces (the longest unmeasured) are measured
 * again per interval, so `du` runs at a bounded rate however many sandboxes run.
 *
 * Every replica samples; a row is keyed by sandbox and interval start and inserted
 * OR IGNORE, so one interval of one sandbox is one row whichever replica wrote it.
 * Sandboxes without a running session are not sampled (their use is 0).
 */
import type { ContainerStats, Driver } from "../drivers/driver.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { Stores } from "../store/index.ts";
import type { MetricSampleRecord } from "../store/metric-sample-store.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import type { ProfileRegistry } from "./profiles.ts";

const MiB = 1024 * 1024;
/** Workspaces whose disk is measured again per interval (each measurement runs `du` in a helper container). */
export const DISK_MEASURES_PER_TICK = 2;
/** Engine readings in flight at once. */
const READ_CONCURRENCY = 4;

export interface MetricsSamplerDeps {
  stores: Pick<Stores, "sessions" | "sandboxes" | "workspaces" | "metricSamples">;
  driver: Pick<Driver, "containerStats">;
  profiles: Pick<ProfileRegistry, "forSandbox">;
  /** The workspace's fresh cached bytes, without measuring (null when none). */
  diskKnown(ws: WorkspaceRecord): number | null;
  /** Measures the workspace's bytes. */
  diskMeasure(ws: WorkspaceRecord): Promise<number>;
  logger: Logger;
  now?: () => number;
}

export interface MetricsSamplerOptions {
  /** Seconds between samples; 0 = none. */
  intervalSeconds: number;
  /** Seconds samples are kept. */
  historySeconds: number;
}

interface Reading {
  cpuTotalNs: number;
  at: number;
}

interface Disk {
  bytes: number;
  at: number;
}

/** What one tick did. */
export interface SampleReport {
  sampled: number;
  purged: number;
  errors: number;
}

export class MetricsSampler {
  private readonly now: () => number;
  private timer: ReturnType<typeof setInterval> | null = null;
  private running: Promise<SampleReport> | null = null;
  /** Per session, its container's last reading (the next one's CPU share is against it). */
  private readonly readings = new Map<string, Reading>();
  /** Per sandbox, its workspace's last measured bytes. */
  private readonly disks = new Map<string, Disk>();

  constructor(
    private readonly deps: MetricsSamplerDeps,
    private readonly opts: MetricsSamplerOptions,
  ) {
    this.now = deps.now ?? Date.now;
  }

  get intervalMs(): number {
    return this.opts.intervalSeconds * 1000;
  }

  /** Starts sampling every interval (nothing when the interval is 0). Idempotent. */
  start(): void {
    if (this.timer || this.opts.intervalSeconds <= 0) return;
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref?.();
  }

  /** Stops sampling and waits for a tick in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  /** One tick; a call while a tick runs joins it. Never throws. */
  runOnce(): Promise<SampleReport> {
    this.running ??= this.tick().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async tick(): Promise<SampleReport> {
    const report: SampleReport = { sampled: 0, purged: 0, errors: 0 };
    try {
      const now = this.now();
      const slot = Math.floor(now / this.intervalMs) * this.intervalMs;
      const live = (await this.deps.stores.sessions.listActive()).filter((s) => s.status === "ready" && s.containerId);
      const liveIds = new Set(live.map((s) => s.id));
      for (const id of this.readings.keys()) if (!liveIds.has(id)) this.readings.delete(id);
      const liveSandboxes = new Set(live.map((s) => s.sandboxId));
      for (const id of this.disks.keys()) if (!liveSandboxes.has(id)) this.disks.delete(id);
      const remeasure = this.toRemeasure(
        live.map((s) => s.sandboxId),
        now,
      );
      const samples: MetricSampleRecord[] = [];
      await eachLimited(live, READ_CONCURRENCY, async (session) => {
        try {
          const sample = await this.sample(session.id, session.sandboxId, session.containerId as string, slot, remeasure);
          if (sample) samples.push(sample);
        } catch (e) {
          report.errors++;
          this.deps.logger.debug("metrics sample failed", { sandbox_id: session.sandboxId, error: errorMessage(e) });
        }
      });
      await this.deps.stores.metricSamples.insert(samples);
      report.sampled = samples.length;
      report.purged = await this.deps.stores.metricSamples.purgeBefore(now - this.opts.historySeconds * 1000);
    } catch (e) {
      report.errors++;
      this.deps.logger.warn("metrics sampling failed; retrying on the next interval", { error: errorMessage(e) });
    }
    return report;
  }

  /** The sandboxes whose disk is measured this tick: never measured here first, then the longest unmeasured. */
  private toRemeasure(sandboxIds: string[], now: number): Set<string> {
    const due = sandboxIds
      .map((id) => ({ id, at: this.disks.get(id)?.at ?? Number.NEGATIVE_INFINITY }))
      .filter((d) => now - d.at >= 60_000)
      .sort((a, b) => a.at - b.at);
    return new Set(due.slice(0, DISK_MEASURES_PER_TICK).map((d) => d.id));
  }

  private async sample(
    sessionId: string,
    sandboxId: string,
    containerId: string,
    slot: number,
    remeasure: Set<string>,
  ): Promise<MetricSampleRecord | null> {
    const stats = await this.deps.driver.containerStats(containerId, { oneShot: true });
    if (!stats) return null;
    const at = this.now();
    const previous = this.readings.get(sessionId);
    this.readings.set(sessionId, { cpuTotalNs: stats.cpuTotalNs, at });
    const sb = await this.deps.stores.sandboxes.get(sandboxId);
    if (!sb || sb.deletedAt !== null) return null;
    const ws = await this.deps.stores.workspaces.get(sb.workspaceId);
    if (!ws) return null;
    const profile = this.deps.profiles.forSandbox(sb.profileId);
    const disk = await this.disk(sandboxId, ws, remeasure.has(sandboxId));
    // The first reading of a session only sets the next one's start; a disk not known yet waits too.
    if (!previous || disk === null) return null;
    return {
      sandboxId,
      at: slot,
      cpuCount: profile.cpus,
      cpuUsedPct: cpuShare(previous, { cpuTotalNs: stats.cpuTotalNs, at }, profile.cpus),
      memoryUsedBytes: stats.memoryUsedBytes,
      memoryLimitBytes: stats.memoryLimitBytes || profile.memory_mb * MiB,
      memoryCacheBytes: stats.memoryCacheBytes,
      diskUsedBytes: disk,
      diskLimitBytes: ws.sizeLimitMb * MiB,
    };
  }

  private async disk(sandboxId: string, ws: WorkspaceRecord, measure: boolean): Promise<number | null> {
    const known = this.deps.diskKnown(ws);
    if (known !== null) {
      this.disks.set(sandboxId, { bytes: known, at: this.now() });
      return known;
    }
    if (measure) {
      const bytes = await this.deps.diskMeasure(ws);
      this.disks.set(sandboxId, { bytes, at: this.now() });
      return bytes;
    }
    return this.disks.get(sandboxId)?.bytes ?? null;
  }
}

/** CPU used between two readings, in percent of one CPU (0 to 100 × cpus). */
export function cpuShare(before: Reading, after: Pick<ContainerStats, "cpuTotalNs"> & { at: number }, cpus: number): number {
  const wallNs = (after.at - before.at) * 1e6;
  if (wallNs <= 0) return 0;
  const pct = ((after.cpuTotalNs - before.cpuTotalNs) / wallNs) * 100;
  return Math.round(Math.min(Math.max(pct, 0), 100 * cpus) * 100) / 100;
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
