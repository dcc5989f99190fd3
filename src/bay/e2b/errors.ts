/**
 * E2B's error shape, `{code: <HTTP status>, message}`, on the E2B routes only.
 * Every failure there is still a BayError first (one hierarchy); this module
 * writes it the way E2B's SDKs read it (envd/connect-errors.ts: as a Connect code for envd).
 */
import type { Context, ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { BayError, type ErrorCode } from "../errors.ts";
import { errorMessage, type Logger } from "../logger.ts";

/** The body E2B's control plane, envd's HTTP routes and the code interpreter answer with. */
export function e2bErrorResponse(c: Context, err: BayError): Response {
  const requestId = c.get("requestId") ?? "";
  if (err.retryAfter !== undefined || err.status === 429 || err.status === 503) {
    c.header("Retry-After", String(Math.ceil(err.retryAfter ?? 1)));
  }
  c.header("X-Request-Id", requestId);
  return c.json({ code: err.status, message: err.message }, err.status);
}

/** onError for the E2B sub-app: the same logging rules as Bay's own handler, E2B's body. */
export function e2bErrorHandler(logger: Logger): ErrorHandler {
  return function e2bOnError(err, c) {
    if (err instanceof BayError) {
      if (err.status >= 500 || Object.keys(err.internal).length > 0) {
        logger.warn("request failed", {
          code: err.code,
          error: err.message,
          ...err.internal,
          ...(err.cause ? { cause: errorMessage(err.cause) } : {}),
        });
      }
      return e2bErrorResponse(c, err);
    }
    if (err instanceof HTTPException) {
      const code: ErrorCode = err.status === 413 ? "payload_too_large" : err.status < 500 ? "validation_error" : "internal_error";
      return e2bErrorResponse(c, new BayError(code, err.status < 500 ? err.message || "invalid request" : "internal error"));
    }
    logger.error("unexpected error", { error: (err as Error).message, stack: (err as Error).stack });
    return e2bErrorResponse(c, new BayError("internal_error", "internal error"));
  };
}
