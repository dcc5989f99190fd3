/** Workspace resource: external workspaces and their lifecycle. */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { toWorkspaceDto } from "../dto.ts";
import { operations as ops } from "../generated/index.ts";
import { validate, validateOptionalJson } from "../middleware/validate.ts";

export function workspaceRoutes(deps: AppDeps): Hono {
  const { workspaces } = deps;
  const app = new Hono();

  app.post(
    ops.createWorkspace.honoPath,
    validate("header", ops.createWorkspace.headers),
    validateOptionalJson(ops.createWorkspace.body),
    async (c) => {
      const ws = await workspaces.create(c.get("owner"), { sizeLimitMb: c.req.valid("json").size_limit_mb }, c.get("idempotencyClaim"));
      return c.json(toWorkspaceDto(ws), 201);
    },
  );

  app.get(ops.listWorkspaces.honoPath, validate("query", ops.listWorkspaces.query), async (c) => {
    const page = await workspaces.list(c.get("owner"), c.req.valid("query"));
    return c.json({ items: page.items.map(toWorkspaceDto), next_cursor: page.nextCursor }, 200);
  });

  app.get(ops.getWorkspace.honoPath, validate("param", ops.getWorkspace.params), async (c) =>
    c.json(toWorkspaceDto(await workspaces.get(c.get("owner"), c.req.valid("param").id)), 200),
  );

  app.delete(ops.deleteWorkspace.honoPath, validate("param", ops.deleteWorkspace.params), async (c) => {
    await workspaces.delete(c.get("owner"), c.req.valid("param").id);
    return c.body(null, 204);
  });
  return app;
}
