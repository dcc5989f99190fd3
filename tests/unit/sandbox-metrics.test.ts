import { expect, test } from "bun:test";
import { SandboxMetrics } from "../../src/bay/domain/sandbox-metrics.ts";

/** Metrics over fakes: the sandboxes exist, none runs, and measuring a disk takes a moment. */
function setUp() {
  let inFlight = 0;
  let most = 0;
  const metrics = new SandboxMetrics({
    sandboxes: {
      get: async (owner: string, id: string) => ({ id, owner, profileId: "p", workspaceId: `ws-${id}`, session: null }),
    } as never,
    stores: { workspaces: { get: async (id: string) => ({ id, sizeLimitMb: 10 }) } } as never,
    profiles: { forSandbox: () => ({ cpus: 2, memory_mb: 512 }) } as never,
    driver: { containerStats: async () => null },
    diskUsed: async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await Bun.sleep(20);
      inFlight--;
      return 100;
    },
  });
  return { metrics, most: () => most };
}

test("one owner's disk measurements run one at a time; two owners' run side by side", async () => {
  const one = setUp();
  const samples = await Promise.all(Array.from({ length: 6 }, (_, i) => one.metrics.sample("alice", `sb${i}`)));
  expect(samples.map((s) => s.diskUsedBytes)).toEqual([100, 100, 100, 100, 100, 100]);
  expect(one.most()).toBe(1);
  const two = setUp();
  await Promise.all(["alice", "bob", "alice", "bob"].map((owner, i) => two.metrics.sample(owner, `sb${i}`)));
  expect(two.most()).toBe(2);
});

test("a sandbox without a running runtime reads 0 CPU and memory, the profile's limits and the workspace's", async () => {
  const { metrics } = setUp();
  expect(await metrics.sample("alice", "sb")).toMatchObject({
    running: false,
    cpuCount: 2,
    cpuUsedPct: 0,
    memoryUsedBytes: 0,
    memoryLimitBytes: 512 * 1024 * 1024,
    memoryCacheBytes: 0,
    diskUsedBytes: 100,
    diskLimitBytes: 10 * 1024 * 1024,
  });
});
