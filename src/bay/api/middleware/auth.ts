/**
 * Authentication: sets the request's owner from a Bearer API key or JWT, or,
 * in explicit anonymous mode, from X-Owner / the default owner. Credentials are
 * never logged or echoed.
 *
 * Owners from different kinds of identity never meet by accident: an API key's
 * owner is the name it was created for (which may not start with `jwt:` or
 * `anon:`), a JWT's is `jwt:` + sub (configurable), an anonymous one `anon:` + name.
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import type { ApiKeyService } from "../../domain/auth/api-keys.ts";
import type { JwtVerifier } from "../../domain/auth/jwt-verifier.ts";
import { ANONYMOUS_PREFIX, OWNER_NAME } from "../../domain/auth/owners.ts";
import { BayError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";

export interface AuthOptions {
  mode: "api_key" | "anonymous";
  apiKeys: ApiKeyService;
  jwt: JwtVerifier | null;
  defaultOwner: string;
  /** Failed authentications are logged with a reason (the request id comes from the context), never the credential. */
  logger?: Logger;
}

const OWNER_RE = OWNER_NAME;
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_LENGTH = 4096;

const unauthorized = (message: string) => new BayError("unauthorized", message, { details: {} });

export function authMiddleware(opts: AuthOptions): MiddlewareHandler {
  const fail = (c: Context, reason: string, message: string) => {
    opts.logger?.info("authentication failed", { reason, method: c.req.method, path: c.req.path });
    return unauthorized(message);
  };
  /** The owner of `token` when only the JWT verifier or the key store can tell. */
  const verified = async (c: Context, next: Next, token: string, jwtShaped: boolean) => {
    let owner: string | null = null;
    if (opts.jwt && jwtShaped) owner = await opts.jwt.verify(token);
    if (!owner && token.length <= MAX_TOKEN_LENGTH) owner = await opts.apiKeys.verify(token);
    if (!owner) throw fail(c, jwtShaped ? "invalid_jwt" : "invalid_api_key", "invalid, expired or revoked credentials");
    c.set("owner", owner);
    return next();
  };
  // Not async: a key this process knows (apiKeys.known) is answered without a promise.
  return function bayAuth(c, next) {
    // Already authenticated by a narrower scheme that ran first (a terminal ticket).
    if (c.get("owner")) return next();
    const header = c.req.header("authorization");
    if (opts.mode === "anonymous" && !header) {
      const owner = c.req.header("x-owner") ?? opts.defaultOwner;
      if (!OWNER_RE.test(owner)) throw new BayError("validation_error", "X-Owner must be 1-128 characters of [A-Za-z0-9_.@:-]");
      c.set("owner", `${ANONYMOUS_PREFIX}${owner}`);
      return next();
    }
    if (!header) throw fail(c, "missing", "missing credentials: send Authorization: Bearer <api key or JWT>");
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw fail(c, "malformed", "malformed Authorization header: expected Bearer <token>");
    const token = m[1]!;
    // A JWT-shaped token goes to the JWT verifier first; anything it rejects may
    // still be an API key (a bootstrap key from config can contain dots).
    const jwtShaped = JWT_RE.test(token);
    if (!(opts.jwt && jwtShaped) && token.length <= MAX_TOKEN_LENGTH) {
      const owner = opts.apiKeys.known(token);
      if (owner !== undefined) {
        c.set("owner", owner);
        return next();
      }
    }
    return verified(c, next, token, jwtShaped);
  };
}
