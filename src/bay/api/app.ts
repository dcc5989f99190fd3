/**
 * createApp: the one Hono app. Middleware order: request id → request context,
 * metrics and access log → error handling (onError/notFound) → connection
 * limits → sandbox hosts (E2B's getHost names, answered here) → auth on /v1 and
 * /mcp → per-owner rate limit → body limit on JSON routes → idempotency on
 * create routes → routes grouped per resource.
 */
import "./context.ts";
import { type ErrorHandler, Hono } from "hono";
import { getPath } from "hono/utils/url";
import type { AppDeps } from "./deps.ts";
import { type OperationSpec, operations } from "./generated/index.ts";
import { cors } from "hono/cors";
import { authMiddleware } from "./middleware/auth.ts";
import { hostGuard } from "./middleware/host-guard.ts";
import { jsonBodyLimit } from "./middleware/body-limit.ts";
import { headerLimit, streamedAnswers, requireHost } from "./middleware/connection.ts";
import { oneLayer } from "./middleware/one-layer.ts";
import { createErrorHandler, createNotFoundHandler } from "./middleware/error-handler.ts";
import { observeRequests } from "../observability/observe-requests.ts";
import { idempotency } from "./middleware/idempotency.ts";
import { requestId } from "./middleware/request-id.ts";
import { RateLimiter, rateLimit, rateLimited } from "./middleware/rate-limit.ts";
import { contextRoutes } from "./routes/contexts.ts";
import { docsRoutes } from "./routes/docs.ts";
import { execRoutes } from "./routes/exec.ts";
import { filesystemRoutes } from "./routes/filesystem.ts";
import { mcpRoutes } from "./routes/mcp.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { portRoutes } from "./routes/ports.ts";
import { processRoutes } from "./routes/processes.ts";
import { sandboxMetricsRoutes } from "./routes/sandbox-metrics.ts";
import { sandboxRoutes } from "./routes/sandboxes.ts";
import { systemRoutes } from "./routes/system.ts";
import { carriesTerminalTicket, terminalRoutes, terminalTicketAuth } from "./routes/terminal.ts";
import { watchRoutes } from "./routes/watch.ts";
import { workspaceFileRoutes } from "./routes/workspace-files.ts";
import { workspaceRoutes } from "./routes/workspaces.ts";
import { e2bAuth } from "../e2b/auth.ts";
import { e2bErrorHandler } from "../e2b/errors.ts";
import { createE2bApi } from "../e2b/index.ts";
import { SANDBOX_HOST_ROUTE } from "../e2b/sandbox-hosts.ts";

export type { AppDeps } from "./deps.ts";

/**
 * The request's path as routed: the URL's, except that slashes right after the E2B
 * prefix count as one (the Python SDKs join `E2B_SANDBOX_URL` and a method with a
 * slash, so a URL given with a trailing slash sent `/e2b//process.Process/…`, no route).
 */
export function routedPath(e2bPrefix: string | null): (req: Request) => string {
  if (!e2bPrefix) return getPath;
  const doubled = `${e2bPrefix}//`;
  return (req) => {
    const path = getPath(req);
    return path.startsWith(doubled) ? `${e2bPrefix}/${path.slice(doubled.length).replace(/^\/+/, "")}` : path;
  };
}

/**
 * Errors in Bay's body, except on the E2B prefix's paths, where what the app's own
 * middleware refuses (host, header and body limits, the host guard) is in E2B's
 * `{code, message}` as the E2B routes' own errors are: the SDKs parse only that, and
 * the Python SDK's generated parsers fail on anything else. A sandbox host's paths are
 * its server's, never E2B's: its refusals keep Bay's body.
 */
function errorHandler(deps: AppDeps): ErrorHandler {
  const bay = createErrorHandler({ logger: deps.logger });
  if (!deps.config.e2b.enabled) return bay;
  const e2b = e2bErrorHandler(deps.logger);
  const prefix = deps.config.e2b.prefix;
  return (err, c) => {
    // A request without Host has a relative URL ("/e2b/…"), whose path Hono misreads (it drops the first segment).
    const url = c.req.raw.url;
    const path = url.startsWith("/") ? url.replace(/[?#].*$/s, "") : c.req.path;
    const onPrefix = path === prefix || path.startsWith(`${prefix}/`);
    return onPrefix && c.get("routeLabel") !== SANDBOX_HOST_ROUTE ? e2b(err, c) : bay(err, c);
  };
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono({ getPath: routedPath(deps.config.e2b.enabled ? deps.config.e2b.prefix : null) });
  app.use(oneLayer(requestId(), observeRequests({ logger: deps.logger, metrics: deps.metrics, accessLog: deps.config.log.access })));
  app.onError(errorHandler(deps));
  app.notFound(createNotFoundHandler(Object.values(operations)));

  const server = deps.config.server;
  app.use(oneLayer(requireHost(), headerLimit(server.max_header_bytes), streamedAnswers(server.idle_timeout)));

  const auth = authMiddleware({
    mode: deps.config.auth.mode,
    apiKeys: deps.apiKeys,
    jwt: deps.jwt,
    defaultOwner: deps.config.auth.default_owner,
    logger: deps.logger,
  });
  const perMinute = deps.config.limits.rate_limit_per_minute;
  const buckets = new RateLimiter({ perMinute });
  const limiter = rateLimit(buckets, perMinute);
  // The E2B-compatible API: its own owners' middleware (X-API-Key), the same rate
  // limit and body limits, E2B's error shape. Its data plane has no owner
  // middleware (the sandbox's token names it): it takes from the same buckets.
  const e2b = deps.config.e2b.enabled
    ? createE2bApi(
        deps,
        [
          e2bAuth({
            mode: deps.config.auth.mode,
            apiKeys: deps.apiKeys,
            jwt: deps.jwt,
            defaultOwner: deps.config.auth.default_owner,
            logger: deps.logger,
          }),
          limiter,
        ],
        { contexts: deps.sandboxContexts },
        (owner) => {
          const wait = buckets.take(owner);
          if (wait > 0) throw rateLimited(perMinute, wait);
        },
      )
    : null;
  // Sandbox hosts ({port}-{id}.{e2b.sandbox_domain}) are the sandboxes' origins, never Bay's: answered here, before CORS, the host guard and auth.
  if (e2b?.hosts) app.use(e2b.hosts);
  if (server.cors_origins.length > 0) {
    app.use(
      cors({
        origin: server.cors_origins,
        allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
        exposeHeaders: ["X-Request-Id", "Retry-After", "Idempotent-Replayed", "Content-Disposition"],
        maxAge: 600,
      }),
    );
  }
  if (deps.config.auth.mode === "anonymous") {
    app.use(hostGuard([...server.allowed_hosts, server.host], server.cors_origins, { carriesCredential: carriesTerminalTicket }));
  }
  // A browser opens the terminal with a single-use ticket instead of a header; it names the owner first.
  app.use(operations.openTerminal.honoPath, terminalTicketAuth(deps.sandboxTerminal));
  // /mcp is owner-scoped exactly like /v1: same credentials and rate limit (its body limit is below, from the spec).
  const owners = oneLayer(auth, limiter);
  for (const scope of ["/v1/*", "/mcp"]) app.use(scope, owners);
  // JSON bodies are small; multipart uploads stream and have their own, larger
  // limit; operations without a body never read one.
  const limit = jsonBodyLimit(deps.config.limits.max_body_bytes);
  for (const op of Object.values(operations) as OperationSpec[]) {
    if (op.body) app.on(op.method.toUpperCase(), op.honoPath, limit);
  }
  const idem = idempotency({
    store: deps.stores.idempotency,
    ttlMs: deps.config.idempotency.ttl_seconds * 1000,
    logger: deps.logger,
    onReplay: () => deps.metrics.idempotencyReplayed(),
  });
  app.post(operations.createSandbox.honoPath, idem);
  app.post(operations.createWorkspace.honoPath, idem);

  app.route("/", systemRoutes(deps));
  app.route("/", docsRoutes());
  app.route("/", metricsRoutes(deps));
  app.route("/", sandboxRoutes(deps));
  app.route("/", sandboxMetricsRoutes(deps));
  app.route("/", execRoutes(deps));
  app.route("/", contextRoutes(deps));
  app.route("/", processRoutes(deps));
  app.route("/", terminalRoutes(deps));
  app.route("/", filesystemRoutes(deps));
  app.route("/", watchRoutes(deps));
  app.route("/", portRoutes(deps));
  app.route("/", workspaceRoutes(deps));
  app.route("/", workspaceFileRoutes(deps));
  if (e2b) {
    // Its routes place the JSON body limit after their own credential check (review s87).
    app.route(deps.config.e2b.prefix, e2b.prefixed);
    app.route("/", e2b.root);
  }
  // MCP tools call the routes above in-process, through this same app.
  app.route(
    "/",
    mcpRoutes(deps, (path, init) => app.request(path, init)),
  );
  return app;
}
