/**
 * A sandbox's resource use now: its runtime's CPU and memory (one sample from the
 * engine, while a session runs) and its workspace's disk use against its limit.
 * Reading it never starts compute.
 */
import type { Driver } from "../drivers/driver.ts";
import { BayError } from "../errors.ts";
import type { Stores } from "../store/index.ts";
import type { MetricSampleRecord } from "../store/metric-sample-store.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import type { ProfileRegistry } from "./profiles.ts";
import type { SandboxManager } from "./sandbox-manager.ts";

const MiB = 1024 * 1024;

/** A sample: the use a stored one records, when it was taken and whether a runtime ran. */
export interface SandboxMetricsSample extends Omit<MetricSampleRecord, "sandboxId" | "at"> {
  sampledAt: number;
  running: boolean;
}

/** A history window in Unix seconds, both ends included (either may be left out). */
export interface MetricsWindow {
  start?: number;
  end?: number;
}

/** Refuses a window whose start is after its end (validation_error on `start`). */
export function checkWindow(window: MetricsWindow): MetricsWindow {
  if (window.start !== undefined && window.end !== undefined && window.start > window.end) {
    throw new BayError("validation_error", "start is after end", { details: { field: "start" } });
  }
  return window;
}

export interface SandboxMetricsDeps {
  sandboxes: Pick<SandboxManager, "get">;
  stores: Pick<Stores, "workspaces" | "metricSamples">;
  profiles: Pick<ProfileRegistry, "forSandbox">;
  driver: Pick<Driver, "containerStats">;
  /** The workspace's bytes (cached for a few seconds: measuring runs `du`). */
  diskUsed(ws: WorkspaceRecord): Promise<number>;
  /** Seconds samples are kept (metrics.history): older ones are never answered, purged or not yet. */
  historySeconds?: number;
  now?: () => number;
}

export class SandboxMetrics {
  private readonly now: () => number;
  /** Per owner, the disk measurement running for its metrics: the next waits for it. */
  private readonly measuring = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: SandboxMetricsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** One sample for the owner's sandbox (404 for another owner's or an unknown one). */
  async sample(owner: string, sandboxId: string): Promise<SandboxMetricsSample> {
    return this.sampleOf(await this.deps.sandboxes.get(owner, sandboxId));
  }

  /** One sample of a sandbox already read (and found its owner's). */
  async sampleOf(sb: SandboxRecord): Promise<SandboxMetricsSample> {
    const profile = this.deps.profiles.forSandbox(sb.profileId);
    const ws = await this.deps.stores.workspaces.get(sb.workspaceId);
    if (!ws) throw new BayError("internal_error", `workspace ${sb.workspaceId} of sandbox ${sb.id} is missing`);
    const containerId = sb.session?.status === "ready" ? sb.session.containerId : null;
    const [stats, diskUsed] = await Promise.all([
      containerId ? this.deps.driver.containerStats(containerId) : Promise.resolve(null),
      this.diskUsed(sb.owner, ws),
    ]);
    return {
      sampledAt: this.now(),
      running: stats !== null,
      cpuCount: profile.cpus,
      // The engine's share can overshoot by a rounding; never past what the profile allows.
      cpuUsedPct: Math.min(stats?.cpuUsedPct ?? 0, 100 * profile.cpus),
      memoryUsedBytes: stats?.memoryUsedBytes ?? 0,
      memoryLimitBytes: stats?.memoryLimitBytes || profile.memory_mb * MiB,
      memoryCacheBytes: stats?.memoryCacheBytes ?? 0,
      diskUsedBytes: diskUsed,
      diskLimitBytes: ws.sizeLimitMb * MiB,
    };
  }

  /**
   * The owner's sandbox's stored samples (metrics-sampler.ts) taken in the window,
   * oldest first (a sample taken while a runtime ran); 404 for another owner's or an
   * unknown sandbox.
   */
  async history(owner: string, sandboxId: string, window: MetricsWindow): Promise<SandboxMetricsSample[]> {
    return this.historyOf(await this.deps.sandboxes.get(owner, sandboxId), window);
  }

  /** The stored samples of a sandbox already read (and found its owner's) taken in the window. */
  async historyOf(sb: SandboxRecord, window: MetricsWindow): Promise<SandboxMetricsSample[]> {
    // Nothing from before the owner had it (a warm-pool member's warm-up: a claim sets
    // created_at) or older than the history.
    const oldest = Math.max(sb.createdAt, this.now() - (this.deps.historySeconds ?? 3600) * 1000);
    const from = Math.max(oldest, window.start === undefined ? 0 : window.start * 1000);
    const to = window.end === undefined ? Number.MAX_SAFE_INTEGER : window.end * 1000 + 999;
    const rows = await this.deps.stores.metricSamples.list(sb.id, from, to);
    return rows.map(({ sandboxId: _, at, ...use }) => ({ sampledAt: at, running: true, ...use }));
  }

  /**
   * One owner's disk measurements for metrics run one at a time: a measurement not in
   * the cache runs `du` in a helper container, and without this an owner asking for
   * many idle sandboxes at once started as many helpers (and slowed everyone's files).
   */
  private diskUsed(owner: string, ws: WorkspaceRecord): Promise<number> {
    const before = this.measuring.get(owner) ?? Promise.resolve();
    const mine = before.catch(() => {}).then(() => this.deps.diskUsed(ws));
    this.measuring.set(owner, mine);
    void mine
      .catch(() => {})
      .finally(() => {
        if (this.measuring.get(owner) === mine) this.measuring.delete(owner);
      });
    return mine;
  }
}
