/** Sandbox resource: create, list, get, keepalive, stop, extend TTL, delete. */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { toSandboxDto } from "../dto.ts";
import { operations as ops } from "../generated/index.ts";
import { validate, validateOptionalJson } from "../middleware/validate.ts";

export function sandboxRoutes(deps: AppDeps): Hono {
  const { sandboxes, profiles } = deps;
  const dto = (sb: Parameters<typeof toSandboxDto>[0]) => toSandboxDto(sb, profiles);
  const app = new Hono();

  app.post(
    ops.createSandbox.honoPath,
    validate("header", ops.createSandbox.headers),
    validateOptionalJson(ops.createSandbox.body),
    async (c) => {
      const body = c.req.valid("json");
      const input = { profile: body.profile, workspaceId: body.workspace_id, ttl: body.ttl };
      const sb = await sandboxes.create(c.get("owner"), input, c.get("idempotencyClaim"));
      return c.json(dto(sb), 201);
    },
  );

  app.get(ops.listSandboxes.honoPath, validate("query", ops.listSandboxes.query), async (c) => {
    const q = c.req.valid("query");
    const page = await sandboxes.list(c.get("owner"), q);
    return c.json({ items: page.items.map(dto), next_cursor: page.nextCursor }, 200);
  });

  app.get(ops.getSandbox.honoPath, validate("param", ops.getSandbox.params), async (c) =>
    c.json(dto(await sandboxes.get(c.get("owner"), c.req.valid("param").id)), 200),
  );

  app.post(ops.keepaliveSandbox.honoPath, validate("param", ops.keepaliveSandbox.params), async (c) =>
    c.json(dto(await sandboxes.keepalive(c.get("owner"), c.req.valid("param").id)), 200),
  );

  app.post(ops.stopSandbox.honoPath, validate("param", ops.stopSandbox.params), async (c) =>
    c.json(dto(await sandboxes.stop(c.get("owner"), c.req.valid("param").id)), 200),
  );

  app.post(
    ops.extendSandboxTtl.honoPath,
    validate("param", ops.extendSandboxTtl.params),
    validate("json", ops.extendSandboxTtl.body),
    async (c) => c.json(dto(await sandboxes.extendTtl(c.get("owner"), c.req.valid("param").id, c.req.valid("json").extend_by)), 200),
  );

  app.delete(ops.deleteSandbox.honoPath, validate("param", ops.deleteSandbox.params), async (c) => {
    await sandboxes.delete(c.get("owner"), c.req.valid("param").id);
    return c.body(null, 204);
  });
  return app;
}
