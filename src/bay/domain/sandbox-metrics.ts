/**
 * A sandbox's resource use now: its runtime's CPU and memory (one sample from the
 * engine, while a session runs) and its workspace's disk use against its limit.
 * Reading it never starts compute.
 */
import type { Driver } from "../drivers/driver.ts";
import { BayError } from "../errors.ts";
import type { Stores } from "../store/index.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import type { ProfileRegistry } from "./profiles.ts";
import type { SandboxManager } from "./sandbox-manager.ts";

const MiB = 1024 * 1024;

export interface SandboxMetricsSample {
  sampledAt: number;
  running: boolean;
  cpuCount: number;
  cpuUsedPct: number;
  memoryUsedBytes: number;
  memoryLimitBytes: number;
  diskUsedBytes: number;
  diskLimitBytes: number;
}

export interface SandboxMetricsDeps {
  sandboxes: Pick<SandboxManager, "get">;
  stores: Pick<Stores, "workspaces">;
  profiles: Pick<ProfileRegistry, "forSandbox">;
  driver: Pick<Driver, "containerStats">;
  /** The workspace's bytes (cached for a few seconds: measuring runs `du`). */
  diskUsed(ws: WorkspaceRecord): Promise<number>;
  now?: () => number;
}

export class SandboxMetrics {
  private readonly now: () => number;

  constructor(private readonly deps: SandboxMetricsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** One sample for the owner's sandbox (404 for another owner's or an unknown one). */
  async sample(owner: string, sandboxId: string): Promise<SandboxMetricsSample> {
    const sb = await this.deps.sandboxes.get(owner, sandboxId);
    const profile = this.deps.profiles.forSandbox(sb.profileId);
    const ws = await this.deps.stores.workspaces.get(sb.workspaceId);
    if (!ws) throw new BayError("internal_error", `workspace ${sb.workspaceId} of sandbox ${sandboxId} is missing`);
    const containerId = sb.session?.status === "ready" ? sb.session.containerId : null;
    const [stats, diskUsed] = await Promise.all([
      containerId ? this.deps.driver.containerStats(containerId) : Promise.resolve(null),
      this.deps.diskUsed(ws),
    ]);
    return {
      sampledAt: this.now(),
      running: stats !== null,
      cpuCount: profile.cpus,
      cpuUsedPct: stats?.cpuUsedPct ?? 0,
      memoryUsedBytes: stats?.memoryUsedBytes ?? 0,
      memoryLimitBytes: stats?.memoryLimitBytes || profile.memory_mb * MiB,
      diskUsedBytes: diskUsed,
      diskLimitBytes: ws.sizeLimitMb * MiB,
    };
  }
}
