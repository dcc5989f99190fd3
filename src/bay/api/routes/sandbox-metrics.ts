/**
 * GET /v1/sandboxes/{id}/metrics: a sandbox's resource use now (never starts compute);
 * GET /v1/sandboxes/{id}/metrics/history: the samples taken while its runtime ran.
 */
import { Hono } from "hono";
import { checkWindow, type SandboxMetricsSample } from "../../domain/sandbox-metrics.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";

/** A sample as the API answers it. */
function sampleBody(m: SandboxMetricsSample) {
  return {
    sampled_at: new Date(m.sampledAt).toISOString(),
    running: m.running,
    cpu_count: m.cpuCount,
    cpu_used_pct: m.cpuUsedPct,
    memory_used_bytes: m.memoryUsedBytes,
    memory_limit_bytes: m.memoryLimitBytes,
    memory_cache_bytes: m.memoryCacheBytes,
    disk_used_bytes: m.diskUsedBytes,
    disk_limit_bytes: m.diskLimitBytes,
  };
}

export function sandboxMetricsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get(ops.getSandboxMetrics.honoPath, validate("param", ops.getSandboxMetrics.params), async (c) => {
    const m = await deps.sandboxMetrics.sample(c.get("owner"), c.req.valid("param").id);
    return c.json(sampleBody(m), 200);
  });
  app.get(
    ops.getSandboxMetricsHistory.honoPath,
    validate("param", ops.getSandboxMetricsHistory.params),
    validate("query", ops.getSandboxMetricsHistory.query),
    async (c) => {
      const { start, end } = c.req.valid("query");
      const items = await deps.sandboxMetrics.history(c.get("owner"), c.req.valid("param").id, checkWindow({ start, end }));
      return c.json({ interval_seconds: deps.config.metrics.sample_interval, items: items.map(sampleBody) }, 200);
    },
  );
  return app;
}
