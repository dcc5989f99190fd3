/**
 * Authentication: sets the request's owner from a Bearer API key or JWT, or,
 * in explicit anonymous mode, from X-Owner / the default owner. Credentials are
 * never logged or echoed.
 */
import type { MiddlewareHandler } from "hono";
import type { ApiKeyService } from "../../domain/auth/api-keys.ts";
import type { JwtVerifier } from "../../domain/auth/jwt-verifier.ts";
import { BayError } from "../../errors.ts";

export interface AuthOptions {
  mode: "api_key" | "anonymous";
  apiKeys: ApiKeyService;
  jwt: JwtVerifier | null;
  defaultOwner: string;
}

const OWNER_RE = /^[A-Za-z0-9_.@:-]{1,128}$/;
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const unauthorized = (message: string) =>
  new BayError("unauthorized", message, { details: {} });

export function authMiddleware(opts: AuthOptions): MiddlewareHandler {
  return async function bayAuth(c, next) {
    const header = c.req.header("authorization");
    if (opts.mode === "anonymous" && !header) {
      const owner = c.req.header("x-owner") ?? opts.defaultOwner;
      if (!OWNER_RE.test(owner)) throw new BayError("validation_error", "X-Owner must be 1-128 characters of [A-Za-z0-9_.@:-]");
      c.set("owner", owner);
      return next();
    }
    if (!header) throw unauthorized("missing credentials: send Authorization: Bearer <api key or JWT>");
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw unauthorized("malformed Authorization header: expected Bearer <token>");
    const token = m[1]!;
    let owner: string | null = null;
    if (JWT_RE.test(token) && opts.jwt) owner = await opts.jwt.verify(token);
    else if (!JWT_RE.test(token)) owner = await opts.apiKeys.verify(token);
    if (!owner) throw unauthorized("invalid, expired or revoked credentials");
    c.set("owner", owner);
    return next();
  };
}
