/**
 * Per-request connection rules that Bun.serve cannot express globally:
 *
 * * a request names its Host: HTTP/1.1 requires it (Bun refuses one without),
 *   but for an HTTP/1.0 request without it Bun hands over a relative URL, which
 *   routes to the wrong path and breaks every absolute URL built from it;
 * * request headers and URL are bounded (`server.max_header_bytes`): Bay raises
 *   Bun's own parser limit far above it, so an oversized request reaches the app
 *   and is refused in the error model (400) instead of with a bare 431;
 * * connections idle for `server.idle_timeout` seconds are closed (slow or
 *   half-sent requests hold nothing forever), except on the calls that may
 *   legitimately wait for minutes (an exec, a transfer): Bay bounds those with
 *   its own deadlines, so their connection has none.
 */
import type { Context, MiddlewareHandler } from "hono";
import { BayError } from "../../errors.ts";

/** What Bun's server exposes per request (the Hono env when served by Bun.serve). */
interface BunServerLike {
  timeout?: (request: Request, seconds: number) => void;
}

/** Refuses a request without a Host header (400 in the error model). */
export function requireHost(): MiddlewareHandler {
  return async function bayRequireHost(c, next) {
    // Bun gives such a request a relative URL ("/v1/…"); every request with a Host has an absolute one.
    if (c.req.raw.url.startsWith("/")) {
      throw new BayError("validation_error", "a Host header is required", {
        details: { issues: [{ path: "headers.host", message: "required" }] },
      });
    }
    return next();
  };
}

/** Refuses requests whose headers and URL together exceed `maxBytes`. */
export function headerLimit(maxBytes: number): MiddlewareHandler {
  return async function bayHeaderLimit(c, next) {
    let size = c.req.url.length;
    c.req.raw.headers.forEach((value, name) => {
      size += name.length + value.length + 4;
    });
    if (size > maxBytes) {
      throw new BayError("validation_error", `request line and headers exceed ${maxBytes} bytes`, {
        details: { issues: [{ path: "headers", message: `larger than ${maxBytes} bytes` }] },
      });
    }
    return next();
  };
}

/**
 * Lifts the idle timeout of this request's connection, for a call bounded by
 * Bay's own deadlines. Only once the caller is authenticated and its JSON body
 * is in: until then Bay waits on the client, and a client that stops sending
 * must be cut by `server.idle_timeout` (otherwise anyone could hold sockets open
 * forever with half a body and no credentials).
 */
export function liftIdleTimeout(c: Context): void {
  (c.env as BunServerLike | undefined)?.timeout?.(c.req.raw, 0);
}

/**
 * Middleware for the long-running /v1 operations, registered after authentication,
 * the rate limit and the body limit: reads a request's JSON body first (the
 * validator reads it from Hono's cache), then lifts the idle timeout.
 */
export function noIdleTimeout(o: { jsonBody: boolean }): MiddlewareHandler {
  return async function bayNoIdleTimeout(c, next) {
    if (o.jsonBody && c.req.raw.body !== null) await c.req.text();
    liftIdleTimeout(c);
    return next();
  };
}

/**
 * An error answer is never a stream: its connection gets `server.idle_timeout`
 * back whatever lifted it, since all that can be left is a body the client may
 * never finish sending.
 */
export function idleTimeoutAfterErrors(idleSeconds: number): MiddlewareHandler {
  return async function bayIdleTimeoutAfterErrors(c, next) {
    await next();
    if (c.res.status >= 400) (c.env as BunServerLike | undefined)?.timeout?.(c.req.raw, idleSeconds);
  };
}
