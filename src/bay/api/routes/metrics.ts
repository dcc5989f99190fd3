/**
 * GET /metrics. Metrics describe the whole installation, not one owner, so
 * owner credentials do not open them. With `metrics.token` configured every
 * scraper must send it; without one, only loopback peers are answered, and a
 * request that came through a proxy (Forwarded / X-Forwarded-For) does not
 * count as loopback, since the proxy itself connects from there.
 */
import { timingSafeEqual } from "node:crypto";
import { type Context, Hono } from "hono";
import { BayError } from "../../errors.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../../observability/metrics-registry.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { bunServer } from "../served.ts";

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/**
 * The peer's address as Bun's server reports it. Undefined when the request did
 * not come through a socket at all: `app.request` in-process (tests, MCP tools),
 * which is as local as a caller gets.
 */
export function peerAddress(c: Context): string | null | undefined {
  const server = bunServer(c);
  if (!server) return undefined;
  return server.requestIP(c.req.raw)?.address ?? null;
}

function isLocal(c: Context): boolean {
  if (c.req.header("forwarded") !== undefined || c.req.header("x-forwarded-for") !== undefined) return false;
  const peer = peerAddress(c);
  return peer === undefined || (peer !== null && LOOPBACK.test(peer));
}

const digest = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest();

function checkAccess(c: Context, token: string | undefined): void {
  if (token === undefined) {
    if (isLocal(c)) return;
    throw new BayError(
      "forbidden",
      "metrics are served to loopback peers only; set metrics.token (BAY_METRICS_TOKEN) to scrape from elsewhere",
    );
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
  // Hashes first: equal lengths for timingSafeEqual, and nothing about the token's length leaks.
  if (!m || !timingSafeEqual(digest(m[1]!), digest(token))) {
    throw new BayError("unauthorized", "metrics need Authorization: Bearer <metrics token>");
  }
}

export function metricsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get(ops.getMetrics.honoPath, async (c) => {
    checkAccess(c, deps.config.metrics.token);
    return c.body(await deps.metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });
  return app;
}
