/**
 * The single place where failures become HTTP responses: every error, from a
 * thrown BayError to an unexpected exception, is written as the contract's one
 * error body. Unexpected errors are logged with their stack and answered as a
 * bare internal_error.
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { BayError, ERROR_STATUS, errorBody } from "../../errors.ts";
import { errorMessage, type Logger } from "../../logger.ts";

/** Writes the contract's error body for a BayError. */
export function errorResponse(c: Context, err: BayError): Response {
  const requestId = c.get("requestId") ?? "";
  // The contract promises Retry-After on every 429 and 503; 1 s when the thrower named none.
  const retryAfter = err.retryAfter ?? (err.status === 429 || err.status === 503 ? 1 : undefined);
  if (retryAfter !== undefined) c.header("Retry-After", String(Math.ceil(retryAfter)));
  // RFC 6750 §3: a 401 names the scheme; a credential that was sent and refused is an invalid_token.
  if (err.status === 401) {
    const refused = c.req.header("authorization") !== undefined;
    c.header("WWW-Authenticate", refused ? 'Bearer realm="bay", error="invalid_token"' : 'Bearer realm="bay"');
  }
  c.header("X-Request-Id", requestId);
  return c.json(errorBody(err, requestId), err.status);
}

/** Maps Hono's own HTTPExceptions (malformed JSON, body limit) to contract codes. */
function fromHttpException(e: HTTPException): BayError {
  if (e.status === 413) return new BayError("payload_too_large", "request body is too large");
  if (e.status === 401) return new BayError("unauthorized", e.message || "unauthorized");
  if (e.status >= 400 && e.status < 500) return new BayError("validation_error", e.message || "invalid request");
  return new BayError("internal_error", "internal error");
}

export interface ErrorHandlerOptions {
  logger: Logger;
}

export function createErrorHandler({ logger }: ErrorHandlerOptions): ErrorHandler {
  return function bayErrorHandler(err, c) {
    if (err instanceof BayError) {
      // What the client does not see (engine text, ids, endpoints, the cause) goes to the log with the request id.
      if (err.status >= 500 || Object.keys(err.internal).length > 0) {
        const cause = err.cause === undefined ? undefined : errorMessage(err.cause);
        logger.warn("request failed", {
          code: err.code,
          error: err.message,
          ...err.internal,
          ...(cause ? { cause } : {}),
        });
      }
      return errorResponse(c, err);
    }
    if (err instanceof HTTPException) return errorResponse(c, fromHttpException(err));
    logger.error("unexpected error", { error: err.message, stack: err.stack });
    return errorResponse(c, new BayError("internal_error", "internal error"));
  };
}

/** Route templates known to the app, to tell 404 (no such path) from 405 (wrong method). */
export interface KnownRoute {
  method: string;
  honoPath: string;
}

export function createNotFoundHandler(routes: KnownRoute[]): NotFoundHandler {
  const patterns = routes.map((r) => ({
    method: r.method.toUpperCase(),
    re: new RegExp(`^${r.honoPath.replace(/:[A-Za-z_]+/g, "[^/]+")}/?$`),
  }));
  return function bayNotFound(c) {
    const allowed = patterns.filter((p) => p.re.test(c.req.path)).map((p) => p.method);
    // An allowed method reaching here took a path the routes do not match as written (a trailing slash).
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      c.header("Allow", [...new Set(allowed)].join(", "));
      return errorResponse(
        c,
        new BayError("method_not_allowed", `method ${c.req.method} is not allowed on ${c.req.path}`, { details: { allowed } }),
      );
    }
    return errorResponse(c, new BayError("not_found", `no route for ${c.req.method} ${c.req.path}`));
  };
}

export { ERROR_STATUS };
