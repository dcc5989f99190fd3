/**
 * Ship answers only the Bay session it was started for: every route but /health
 * needs `Authorization: Bearer <session secret>`, compared in constant time.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ShipError } from "./errors.ts";

const digest = (value: string) => createHash("sha256").update(value).digest();

/** The middleware; `open` lists paths that need no secret. */
export function sessionAuth(secret: string, open: ReadonlySet<string> = new Set(["/health"])): MiddlewareHandler {
  // Digests have one length, so the comparison takes the same time whatever was sent.
  const expected = digest(secret);
  return async function shipSessionAuth(c, next) {
    if (open.has(c.req.path)) return next();
    const header = c.req.header("authorization") ?? "";
    const token = header.startsWith("Bearer ") ? header.slice(7) : "";
    if (!timingSafeEqual(digest(token), expected)) throw new ShipError("unauthorized", "missing or wrong session secret");
    return next();
  };
}
