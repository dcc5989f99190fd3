/** Body size limit for JSON routes, answered as 413 payload_too_large in the error model. */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { BayError } from "../../errors.ts";

/**
 * A request that announces its length (Content-Length, no Transfer-Encoding: every
 * served JSON call a client sends whole) is judged by that header alone, as Hono's
 * bodyLimit judges it, but without reading the request's `body`: that makes Bun
 * build a stream for a body it already holds, which every later read then goes
 * through. Any other request (chunked, or built in process without the header) is
 * counted as it is read, by Hono's bodyLimit.
 */
export function jsonBodyLimit(maxBytes: number): MiddlewareHandler {
  const tooLarge = () => {
    throw new BayError("payload_too_large", `request body exceeds the limit of ${maxBytes} bytes`, {
      details: { limit_bytes: maxBytes },
    });
  };
  const counted = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  // Not async: nothing runs after next().
  return function bayJsonBodyLimit(c, next) {
    const headers = c.req.raw.headers;
    const length = headers.get("content-length");
    if (length === null || headers.has("transfer-encoding")) return counted(c, next);
    return Number.parseInt(length, 10) > maxBytes ? tooLarge() : next();
  };
}
