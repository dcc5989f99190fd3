/**
 * createApp: the one Hono app. Middleware order: request id → error handling
 * (onError/notFound) → auth on /v1 → per-owner rate limit → body limit on JSON routes → idempotency on
 * create routes → routes grouped per resource.
 */
import "./context.ts";
import { Hono } from "hono";
import type { AppDeps } from "./deps.ts";
import { operations } from "./generated/index.ts";
import { authMiddleware } from "./middleware/auth.ts";
import { jsonBodyLimit } from "./middleware/body-limit.ts";
import { createErrorHandler, createNotFoundHandler } from "./middleware/error-handler.ts";
import { idempotency } from "./middleware/idempotency.ts";
import { requestId } from "./middleware/request-id.ts";
import { RateLimiter, rateLimit } from "./middleware/rate-limit.ts";
import { docsRoutes } from "./routes/docs.ts";
import { execRoutes } from "./routes/exec.ts";
import { filesystemRoutes } from "./routes/filesystem.ts";
import { sandboxRoutes } from "./routes/sandboxes.ts";
import { systemRoutes } from "./routes/system.ts";
import { workspaceFileRoutes } from "./routes/workspace-files.ts";
import { workspaceRoutes } from "./routes/workspaces.ts";

export type { AppDeps } from "./deps.ts";

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.use(requestId());
  app.onError(createErrorHandler({ logger: deps.logger }));
  app.notFound(createNotFoundHandler(Object.values(operations)));

  app.use(
    "/v1/*",
    authMiddleware({
      mode: deps.config.auth.mode,
      apiKeys: deps.apiKeys,
      jwt: deps.jwt,
      defaultOwner: deps.config.auth.default_owner,
      logger: deps.logger,
    }),
  );
  const perMinute = deps.config.limits.rate_limit_per_minute;
  app.use("/v1/*", rateLimit(new RateLimiter({ perMinute }), perMinute));
  // Uploads stream and have their own, larger limit; everything else is small JSON.
  const limit = jsonBodyLimit(deps.config.limits.max_body_bytes);
  app.use("/v1/*", async function jsonLimit(c, next) {
    if (c.req.method === "POST" && c.req.path.endsWith("/filesystem/upload")) return next();
    return limit(c, next);
  });
  const idem = idempotency({ store: deps.stores.idempotency, ttlMs: deps.config.idempotency.ttl_seconds * 1000, logger: deps.logger });
  app.post(operations.createSandbox.honoPath, idem);
  app.post(operations.createWorkspace.honoPath, idem);

  app.route("/", systemRoutes(deps));
  app.route("/", docsRoutes());
  app.route("/", sandboxRoutes(deps));
  app.route("/", execRoutes(deps));
  app.route("/", filesystemRoutes(deps));
  app.route("/", workspaceRoutes(deps));
  app.route("/", workspaceFileRoutes(deps));
  return app;
}
