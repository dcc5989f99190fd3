/** Docker's stats answer read as `docker stats` reads it. */
import type { ContainerStats } from "../driver.ts";

/** The fields of Docker's stats answer Bay reads (cgroup v1 and v2 alike; absent ones read as 0). */
export interface DockerStats {
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
}

/** Docker's stats as `docker stats` reads them; a container that is not running has no reading (null). */
export function statsOf(raw: DockerStats): ContainerStats | null {
  const mem = raw.memory_stats ?? {};
  // A stopped container answers with zeroed fields and no `read` time.
  if (!raw.read || raw.read.startsWith("0001-") || mem.usage === undefined) return null;
  const cpu = raw.cpu_stats ?? {};
  const pre = raw.precpu_stats ?? {};
  const cpuDelta = (cpu.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
  const cpus = cpu.online_cpus ?? 1;
  // A one-shot reading has no previous one (its precpu is zeroed): no share to compute.
  const cpuUsedPct = cpuDelta > 0 && systemDelta > 0 && pre.system_cpu_usage ? (cpuDelta / systemDelta) * cpus * 100 : 0;
  // Page cache the kernel can drop is not "used": cgroup v2 names it inactive_file, v1 total_inactive_file.
  const cache = mem.stats?.inactive_file ?? mem.stats?.total_inactive_file ?? 0;
  return {
    cpuUsedPct: Math.round(cpuUsedPct * 100) / 100,
    memoryUsedBytes: Math.max(0, mem.usage - cache),
    memoryLimitBytes: mem.limit ?? 0,
    // The whole page cache, active and inactive: cgroup v2's `file`, v1's `total_cache` (`cache` without hierarchy).
    memoryCacheBytes: mem.stats?.file ?? mem.stats?.total_cache ?? mem.stats?.cache ?? 0,
    cpuTotalNs: cpu.cpu_usage?.total_usage ?? 0,
  };
}
