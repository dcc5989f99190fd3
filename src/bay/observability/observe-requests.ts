/**
 * The outermost middleware after the request id: runs the rest of the request
 * inside its request context (so every log line names it), counts it in the
 * HTTP metrics and writes its access line. Both name the route by its
 * template (`/v1/sandboxes/:id/python/exec`), never the raw path: ids and file
 * paths stay out of labels, and the query string and headers out of the log.
 */
import { TEMPLATE_ALIAS_PATH, templateAliasLabel } from "../e2b/route-paths.ts";
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Logger } from "../logger.ts";
import type { BayMetrics } from "./bay-metrics.ts";
import { afterAnswer } from "./after-answer.ts";
import { currentRequest, runInRequest, type RequestContext } from "./request-context.ts";

export interface ObserveOptions {
  logger: Logger;
  metrics: Pick<BayMetrics, "requestStarted">;
  /** Write one access line per request (at info level). */
  accessLog: boolean;
}

/** Route label of a request that matched no route (404, 405): one series, whatever the path. */
export const UNMATCHED_ROUTE = "unmatched";

/** The template of the route that matched, ignoring `use()` middleware. */
export function routeTemplate(c: Context): string {
  const label = c.get("routeLabel");
  if (label !== undefined) return label;
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const path = routes[i]!.path;
    if (routes[i]!.method === "ALL") continue;
    return path.endsWith(TEMPLATE_ALIAS_PATH) ? templateAliasLabel(path, c.req.path, UNMATCHED_ROUTE) : path;
  }
  return UNMATCHED_ROUTE;
}

export function observeRequests(opts: ObserveOptions): MiddlewareHandler {
  const { logger, metrics } = opts;
  const access = opts.accessLog && logger.enabled("info");
  return async function bayObserve(c, next) {
    const parent = currentRequest();
    const ctx: RequestContext = { requestId: c.get("requestId") };
    if (parent) ctx.parentRequestId = parent.requestId;
    const done = metrics.requestStarted();
    const started = performance.now();
    await runInRequest(ctx, async () => {
      let status = 500;
      try {
        await next();
        status = c.res.status;
      } finally {
        const ended = performance.now();
        // Counted and logged once the answer is on its way: nothing in them changes it.
        afterAnswer(() => {
          let route = UNMATCHED_ROUTE;
          try {
            route = routeTemplate(c);
          } finally {
            // Counted whatever happens (the in-flight gauge included).
            done(c.req.method, route, status, ended);
          }
          if (access) logger.info("request", accessFields(c, route, status, ended - started, ctx));
        });
      }
    });
  };
}

function accessFields(c: Context, route: string, status: number, ms: number, ctx: RequestContext): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    method: c.req.method,
    route,
    status,
    duration_ms: Math.round(ms * 10) / 10,
  };
  const owner = c.get("owner");
  if (owner) fields.owner = owner;
  // Ids only from a matched template and only id-shaped, so a junk path never reaches the log.
  if (route.startsWith("/v1/sandboxes/:id")) setId(fields, "sandbox_id", c.req.param("id"));
  else if (route.startsWith("/v1/workspaces/:id")) setId(fields, "workspace_id", c.req.param("id"));
  if (ctx.parentRequestId !== undefined) {
    fields.internal = true;
    if (ctx.parentRequestId !== ctx.requestId) fields.parent_request_id = ctx.parentRequestId;
  }
  return fields;
}

const ID_RE = /^[A-Za-z0-9_.-]{1,128}$/;
function setId(fields: Record<string, unknown>, name: string, value: string | undefined): void {
  if (value !== undefined && ID_RE.test(value)) fields[name] = value;
}
