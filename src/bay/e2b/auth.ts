/**
 * Owners on E2B's control plane: `X-API-Key` is a Bay API key (`e2b_…` keys from
 * `bay keys create --e2b` are ordinary Bay keys in E2B's form) or a JWT;
 * `Authorization: Bearer` works as on Bay's own API; in anonymous mode a request
 * without credentials belongs to `X-Owner` or the default owner, as on /v1.
 * Owners are the same namespace as Bay's: an owner sees the same sandboxes here.
 */
import type { MiddlewareHandler } from "hono";
import type { ApiKeyService } from "../domain/auth/api-keys.ts";
import type { JwtVerifier } from "../domain/auth/jwt-verifier.ts";
import { ANONYMOUS_PREFIX, OWNER_NAME } from "../domain/auth/owners.ts";
import { BayError } from "../errors.ts";
import type { Logger } from "../logger.ts";

export interface E2bAuthOptions {
  mode: "api_key" | "anonymous";
  apiKeys: ApiKeyService;
  jwt: JwtVerifier | null;
  defaultOwner: string;
  logger?: Logger;
}

const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_LENGTH = 4096;

export function e2bAuth(opts: E2bAuthOptions): MiddlewareHandler {
  return async function e2bOwner(c, next) {
    const authorization = c.req.header("authorization");
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
    const token = c.req.header("x-api-key")?.trim() || bearer;
    if (!token) {
      // Bearer credentials that cannot be read (two Authorization headers joined, a space inside, none at
      // all) are refused, as on Bay's own API: never served as X-Owner's or the default owner's.
      if (authorization !== undefined && /^\s*Bearer\b/i.test(authorization)) {
        opts.logger?.info("authentication failed", { reason: "malformed", method: c.req.method, path: c.req.path });
        throw new BayError("unauthorized", "malformed Authorization header: expected Bearer <token>");
      }
      if (opts.mode === "anonymous") {
        const owner = c.req.header("x-owner") ?? opts.defaultOwner;
        if (!OWNER_NAME.test(owner)) throw new BayError("validation_error", "X-Owner must be 1-128 characters of [A-Za-z0-9_.@:-]");
        c.set("owner", `${ANONYMOUS_PREFIX}${owner}`);
        return next();
      }
      opts.logger?.info("authentication failed", { reason: "missing", method: c.req.method, path: c.req.path });
      throw new BayError("unauthorized", "missing credentials: send X-API-Key (a Bay API key)");
    }
    let owner: string | null = null;
    if (opts.jwt && JWT_RE.test(token)) owner = await opts.jwt.verify(token);
    if (!owner && token.length <= MAX_TOKEN_LENGTH) owner = await opts.apiKeys.verify(token);
    if (!owner) {
      opts.logger?.info("authentication failed", { reason: "invalid_api_key", method: c.req.method, path: c.req.path });
      throw new BayError("unauthorized", "invalid, expired or revoked credentials");
    }
    c.set("owner", owner);
    return next();
  };
}
