import { describe, expect, test } from "bun:test";
import { statsOf } from "../../src/bay/drivers/docker/docker-stats.ts";

describe("Docker's stats as Bay reads them", () => {
  test("CPU over the sampled interval, memory without dropable cache (cgroup v2 and v1)", () => {
    const v2 = statsOf({
      read: "2026-12-02T12:00:01Z",
      cpu_stats: { cpu_usage: { total_usage: 3_000_000_000 }, system_cpu_usage: 20_000_000_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 2_500_000_000 }, system_cpu_usage: 18_000_000_000 },
      memory_stats: {
        usage: 300 * 1024 * 1024,
        limit: 1024 * 1024 * 1024,
        stats: { inactive_file: 100 * 1024 * 1024, file: 150 * 1024 * 1024 },
      },
    });
    // 0.5 s of CPU over 2 s of both CPUs' time: a quarter of the machine, half of one CPU.
    // The page cache is all of it, active (50 MiB here) and inactive.
    expect(v2).toEqual({
      cpuUsedPct: 50,
      memoryUsedBytes: 200 * 1024 * 1024,
      memoryLimitBytes: 1024 * 1024 * 1024,
      memoryCacheBytes: 150 * 1024 * 1024,
      cpuTotalNs: 3_000_000_000,
    });
    const v1 = statsOf({
      read: "2026-12-02T12:00:01Z",
      cpu_stats: { cpu_usage: { total_usage: 10 }, system_cpu_usage: 10, online_cpus: 1 },
      precpu_stats: { cpu_usage: { total_usage: 10 }, system_cpu_usage: 5 },
      memory_stats: { usage: 1000, limit: 5000, stats: { total_inactive_file: 400, total_cache: 450, cache: 1 } },
    });
    expect(v1).toEqual({ cpuUsedPct: 0, memoryUsedBytes: 600, memoryLimitBytes: 5000, memoryCacheBytes: 450, cpuTotalNs: 10 });
  });

  test("a container that is not running has no reading; missing fields read as 0", () => {
    expect(statsOf({ read: "0001-01-01T00:00:00Z", memory_stats: {} })).toBeNull();
    expect(statsOf({})).toBeNull();
    expect(statsOf({ read: "2026-12-02T12:00:01Z", memory_stats: { usage: 10 } })).toEqual({
      cpuUsedPct: 0,
      memoryUsedBytes: 10,
      memoryLimitBytes: 0,
      memoryCacheBytes: 0,
      cpuTotalNs: 0,
    });
  });

  test("a one-shot reading (no previous one: precpu zeroed) has its CPU time but no share", () => {
    const one = statsOf({
      read: "2026-12-02T12:00:01Z",
      cpu_stats: { cpu_usage: { total_usage: 7_000_000_000 }, system_cpu_usage: 90_000_000_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 0 }, system_cpu_usage: 0 },
      memory_stats: { usage: 100, limit: 1000, stats: { file: 40, inactive_file: 10 } },
    });
    expect(one).toEqual({ cpuUsedPct: 0, memoryUsedBytes: 90, memoryLimitBytes: 1000, memoryCacheBytes: 40, cpuTotalNs: 7_000_000_000 });
  });
});
