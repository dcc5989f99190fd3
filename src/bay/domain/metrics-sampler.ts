/**
 * The metrics history: every `intervalSeconds`, one sample of each running sandbox's
 * CPU, memory and disk, stored in the database (E2B's getMetrics and
 * GET /v1/sandboxes/{id}/metrics/history read them) and kept `historySeconds`.
 *
 * Cheap by construction: the sandboxes to sample are one query; a running container
 * is read once per interval with one engine reading that answers at once (no second
 * reading a second later); its CPU share is worked out from its CPU time against this
 * sampler's previous reading of the same session, so a session's first interval stores
 * nothing. The disk is the workspace's fresh cached figure when there is one, else the
 * last one this sampler measured (0 before the first): measurements run beside the
 * ticks, never holding one up, at most DISK_MEASURES_IN_FLIGHT at once, each workspace
 * again about once a minute (also after a failure), so `du` runs at a bounded rate
 * however many sandboxes run and however slow one workspace is to measure.
 *
 * Every replica samples; a row is keyed by sandbox and interval start and inserted
 * OR IGNORE, so one interval of one sandbox is one row whichever replica wrote it.
 * Sandboxes without a running session are not sampled (their use is 0).
 */
import type { ContainerStats, Driver } from "../drivers/driver.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { Stores } from "../store/index.ts";
import type { MetricSampleRecord, SampleTarget } from "../store/metric-sample-store.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import type { ProfileRegistry } from "./profiles.ts";

const MiB = 1024 * 1024;
/** Workspace measurements (each runs `du` in a helper container) in flight at once. */
export const DISK_MEASURES_IN_FLIGHT = 2;
/** How long a workspace's figure (or a failed measurement) stands before it is measured again. */
export const DISK_REMEASURE_MS = 60_000;
/** Engine readings in flight at once. */
const READ_CONCURRENCY = 4;

export interface MetricsSamplerDeps {
  stores: Pick<Stores, "workspaces" | "metricSamples">;
  driver: Pick<Driver, "containerStats">;
  profiles: Pick<ProfileRegistry, "forSandbox">;
  /** The workspace's fresh cached bytes, without measuring (null when none). */
  diskKnown(workspaceId: string): number | null;
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
  /** The last figure measured (null: none yet, the last try failed). */
  bytes: number | null;
  /** When it was last measured or tried. */
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
  /** Per sandbox, its workspace's last measurement. */
  private readonly disks = new Map<string, Disk>();
  /** Per sandbox, its workspace's measurement in flight. */
  private readonly measuring = new Map<string, Promise<void>>();

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

  /** Stops sampling and waits for a tick in progress (not for a workspace measurement). */
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

  /** Resolves once no workspace measurement is in flight (tests). */
  async settled(): Promise<void> {
    await Promise.all(this.measuring.values());
  }

  private async tick(): Promise<SampleReport> {
    const report: SampleReport = { sampled: 0, purged: 0, errors: 0 };
    try {
      const now = this.now();
      const slot = Math.floor(now / this.intervalMs) * this.intervalMs;
      const targets = await this.deps.stores.metricSamples.targets();
      this.forgetAllBut(targets);
      this.measureDue(targets, now);
      const samples: MetricSampleRecord[] = [];
      await eachLimited(targets, READ_CONCURRENCY, async (target) => {
        try {
          const sample = await this.sample(target, slot);
          if (sample) samples.push(sample);
        } catch (e) {
          report.errors++;
          this.deps.logger.debug("metrics sample failed", { sandbox_id: target.sandboxId, error: errorMessage(e) });
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

  /** Drops what is kept for sessions and sandboxes no longer running. */
  private forgetAllBut(targets: SampleTarget[]): void {
    const sessions = new Set(targets.map((t) => t.sessionId));
    const sandboxes = new Set(targets.map((t) => t.sandboxId));
    for (const id of this.readings.keys()) if (!sessions.has(id)) this.readings.delete(id);
    for (const id of this.disks.keys()) if (!sandboxes.has(id) && !this.measuring.has(id)) this.disks.delete(id);
  }

  /** Starts measuring the workspaces that are due (never measured first, then the longest unmeasured), up to the bound. */
  private measureDue(targets: SampleTarget[], now: number): void {
    const due = targets
      .filter((t) => !this.measuring.has(t.sandboxId) && this.deps.diskKnown(t.workspaceId) === null)
      .map((t) => ({ t, at: this.disks.get(t.sandboxId)?.at ?? Number.NEGATIVE_INFINITY }))
      .filter((d) => now - d.at >= DISK_REMEASURE_MS)
      .sort((a, b) => a.at - b.at);
    for (const { t } of due.slice(0, Math.max(0, DISK_MEASURES_IN_FLIGHT - this.measuring.size))) {
      // measure() never throws: a failure is recorded like a success.
      this.measuring.set(
        t.sandboxId,
        this.measure(t).finally(() => this.measuring.delete(t.sandboxId)),
      );
    }
  }

  private async measure(t: SampleTarget): Promise<void> {
    const last = this.disks.get(t.sandboxId)?.bytes ?? null;
    try {
      const ws = await this.deps.stores.workspaces.get(t.workspaceId);
      const bytes = ws ? await this.deps.diskMeasure(ws) : last;
      this.disks.set(t.sandboxId, { bytes, at: this.now() });
    } catch (e) {
      // Tried again after DISK_REMEASURE_MS like a success; the last figure stands meanwhile.
      this.disks.set(t.sandboxId, { bytes: last, at: this.now() });
      this.deps.logger.debug("workspace measurement for metrics failed", { sandbox_id: t.sandboxId, error: errorMessage(e) });
    }
  }

  private async sample(t: SampleTarget, slot: number): Promise<MetricSampleRecord | null> {
    const stats = await this.deps.driver.containerStats(t.containerId, { oneShot: true });
    if (!stats) return null;
    const at = this.now();
    const previous = this.readings.get(t.sessionId);
    this.readings.set(t.sessionId, { cpuTotalNs: stats.cpuTotalNs, at });
    // The first reading of a session only starts the next one's interval.
    if (!previous) return null;
    const profile = this.deps.profiles.forSandbox(t.profileId);
    const known = this.deps.diskKnown(t.workspaceId);
    return {
      sandboxId: t.sandboxId,
      at: slot,
      cpuCount: profile.cpus,
      cpuUsedPct: cpuShare(previous, { cpuTotalNs: stats.cpuTotalNs, at }, profile.cpus),
      memoryUsedBytes: stats.memoryUsedBytes,
      memoryLimitBytes: stats.memoryLimitBytes || profile.memory_mb * MiB,
      memoryCacheBytes: stats.memoryCacheBytes,
      diskUsedBytes: known ?? this.disks.get(t.sandboxId)?.bytes ?? 0,
      diskLimitBytes: t.workspaceSizeLimitMb * MiB,
    };
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
