/**
 * X-Request-Id on every request and response: the caller's id is echoed when it
 * is 1–128 visible ASCII characters (what the spec promises), otherwise one is
 * generated. Shaped like Hono's own request-id middleware, whose stricter
 * character set would silently replace ids such as `trace.123`.
 */
import type { MiddlewareHandler } from "hono";

export interface RequestIdOptions {
  headerName?: string;
  maxLength?: number;
  generate?: () => string;
}

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

export function requestId({
  headerName = "X-Request-Id",
  maxLength = 128,
  generate = () => crypto.randomUUID(),
}: RequestIdOptions = {}): MiddlewareHandler {
  // Not async: nothing runs after next().
  return function bayRequestId(c, next) {
    const given = c.req.header(headerName);
    const id = given && given.length <= maxLength && VISIBLE_ASCII.test(given) ? given : generate();
    c.set("requestId", id);
    c.header(headerName, id);
    return next();
  };
}
