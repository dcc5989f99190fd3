/** Body size limit for JSON routes, answered as 413 payload_too_large in the error model. */
import type { Context, MiddlewareHandler, Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import { BayError } from "../../errors.ts";
import { bunServer } from "../served.ts";

/**
 * A served request that announces its length (Content-Length, no Transfer-Encoding:
 * every JSON call a client sends whole; Bun's parser holds the body to it) is judged
 * by that header alone, as Hono's bodyLimit judges it, but without reading the
 * request's `body`: that makes Bun build a stream for a body it already holds, which
 * every later read then goes through. A chunked one is counted as it is read, by Hono's
 * bodyLimit. One built in process (MCP's calls, tests), whose Content-Length nothing
 * checked, is measured whole (review s57).
 */
export function jsonBodyLimit(maxBytes: number): MiddlewareHandler {
  const tooLarge = () => {
    throw new BayError("payload_too_large", `request body exceeds the limit of ${maxBytes} bytes`, {
      details: { limit_bytes: maxBytes },
    });
  };
  const counted = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  /** A body built in process is in memory already: its size, whatever its headers say (Hono's reads of it reuse it). */
  const held = async (c: Context, next: Next) => {
    if ((await c.req.arrayBuffer()).byteLength > maxBytes) tooLarge();
    return next();
  };
  // Not async: nothing runs after next().
  return function bayJsonBodyLimit(c, next) {
    if (!bunServer(c)) return held(c, next);
    const headers = c.req.raw.headers;
    const length = headers.get("content-length");
    if (length === null || headers.has("transfer-encoding")) return counted(c, next);
    return Number.parseInt(length, 10) > maxBytes ? tooLarge() : next();
  };
}
