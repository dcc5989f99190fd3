/** Health, the OpenAPI document, and profiles. */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { toProfileDto } from "../dto.ts";
import { openApiDocument, operations as ops } from "../generated/index.ts";

export function systemRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get(ops.getHealth.honoPath, async (c) => c.json(await deps.health.check(), 200));
  // info.version is the running Bay's, the same value /health reports. Built on the
  // first request and kept as JSON text only (the parsed tree would stay resident).
  let served: string | undefined;
  app.get(ops.getOpenApi.honoPath, (c) => {
    if (served === undefined) {
      const doc = openApiDocument();
      served = JSON.stringify({ ...doc, info: { ...doc.info, version: deps.config.server.version } });
    }
    return c.body(served, 200, { "Content-Type": "application/json" });
  });
  app.get(ops.listProfiles.honoPath, async (c) => {
    const runtimes = await deps.health.profileRuntimes();
    return c.json({ items: deps.profiles.list().map((p) => toProfileDto(p, runtimes.get(p.id) ?? null)) }, 200);
  });
  return app;
}
