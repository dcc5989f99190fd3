/** Health, the OpenAPI document, and profiles. */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { toProfileDto } from "../dto.ts";
import { openApiDocument, operations as ops } from "../generated/index.ts";

export function systemRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get(ops.getHealth.honoPath, async (c) => c.json(await deps.health.check(), 200));
  // info.version is the running Bay's, the same value /health reports.
  const served = { ...openApiDocument, info: { ...openApiDocument.info, version: deps.config.server.version } };
  app.get(ops.getOpenApi.honoPath, (c) => c.json(served, 200));
  app.get(ops.listProfiles.honoPath, async (c) => {
    const runtimes = await deps.health.profileRuntimes();
    return c.json({ items: deps.profiles.list().map((p) => toProfileDto(p, runtimes.get(p.id) ?? null)) }, 200);
  });
  return app;
}
