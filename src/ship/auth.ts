/**
 * Ship answers only the Bay session it was started for: every route but /health
 * needs `Authorization: Bearer <token>`, where the token is the bearer key derived
 * from the session secret (what Bay sends) or the secret itself (a caller that does
 * not check proofs), compared in constant time. An authenticated call that carries
 * a nonce gets its proof in the answer (src/protocol/ship/auth.ts), errors included.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { MAX_NONCE_LENGTH, NONCE_HEADER, PROOF_HEADER, shipBearer, shipProof } from "../protocol/ship/index.ts";
import { ShipError } from "./errors.ts";

const digest = (value: string) => createHash("sha256").update(value).digest();

/** The middleware; `open` lists paths that need no secret. */
export function sessionAuth(secret: string, open: ReadonlySet<string> = new Set(["/health"])): MiddlewareHandler {
  // Digests have one length, so the comparison takes the same time whatever was sent.
  const accepted = [digest(shipBearer(secret)), digest(secret)];
  return async function shipSessionAuth(c, next) {
    if (open.has(c.req.path)) return next();
    const header = c.req.header("authorization") ?? "";
    const token = digest(header.startsWith("Bearer ") ? header.slice(7) : "");
    // Both compared every time: which one matched does not show in the timing.
    const matches = accepted.map((a) => timingSafeEqual(token, a));
    if (!matches.some(Boolean)) throw new ShipError("unauthorized", "missing or wrong session secret");
    const nonce = c.req.header(NONCE_HEADER);
    if (nonce === undefined || nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH) return next();
    try {
      await next();
    } finally {
      c.res?.headers.set(PROOF_HEADER, shipProof(secret, nonce));
    }
  };
}
