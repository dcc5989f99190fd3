/** GET /v1/sandboxes/{id}/metrics: a sandbox's resource use now (never starts compute). */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";

export function sandboxMetricsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get(ops.getSandboxMetrics.honoPath, validate("param", ops.getSandboxMetrics.params), async (c) => {
    const m = await deps.sandboxMetrics.sample(c.get("owner"), c.req.valid("param").id);
    return c.json(
      {
        sampled_at: new Date(m.sampledAt).toISOString(),
        running: m.running,
        cpu_count: m.cpuCount,
        cpu_used_pct: m.cpuUsedPct,
        memory_used_bytes: m.memoryUsedBytes,
        memory_limit_bytes: m.memoryLimitBytes,
        memory_cache_bytes: m.memoryCacheBytes,
        disk_used_bytes: m.diskUsedBytes,
        disk_limit_bytes: m.diskLimitBytes,
      },
      200,
    );
  });
  return app;
}
