/**
 * JWT verification with jose: an HS256 secret, a JWKS URL, or both (the
 * token's `alg` picks the key). The owner is `ownerPrefix` + `sub` (so a
 * subject never names an API-key owner by accident); `exp` is required unless
 * configured otherwise, `nbf` enforced when present, `iss` and `aud` when
 * configured (and configuration requires both with a JWKS).
 */
import type { JWTVerifyGetKey } from "jose";
import { errorMessage, type Logger } from "../../logger.ts";

export interface JwtOptions {
  secret?: string | undefined;
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Refuse tokens without `exp` (default true). */
  requireExp?: boolean | undefined;
  /** Put before `sub` to make the owner (default "jwt:"). */
  ownerPrefix?: string | undefined;
  /** Reports JWKS fetch failures (an operator problem, not a client one). */
  logger?: Logger | undefined;
}

/** Asymmetric algorithms accepted from a JWKS; symmetric ones only with the configured secret. */
const JWKS_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

/**
 * jose, loaded with the first verifier: a Bay without JWT configured never
 * loads it (~2 MiB of resident memory).
 */
function jose(): typeof import("jose") {
  return require("jose") as typeof import("jose");
}

export class JwtVerifier {
  private readonly jose = jose();
  private readonly secret: Uint8Array | null;
  private readonly jwks: JWTVerifyGetKey | null;
  private readonly algorithms: string[];

  constructor(private readonly opts: JwtOptions) {
    this.secret = opts.secret ? new TextEncoder().encode(opts.secret) : null;
    this.jwks = opts.jwksUrl ? this.jose.createRemoteJWKSet(new URL(opts.jwksUrl)) : null;
    if (!this.secret && !this.jwks) throw new Error("JwtVerifier needs a secret or a JWKS URL");
    this.algorithms = [...(this.secret ? ["HS256"] : []), ...(this.jwks ? JWKS_ALGORITHMS : [])];
  }

  static configured(opts: JwtOptions): boolean {
    return Boolean(opts.secret || opts.jwksUrl);
  }

  /** The JWKS URL without query or credentials, for logs. */
  private jwksLocation(): string | undefined {
    if (!this.opts.jwksUrl) return undefined;
    const u = new URL(this.opts.jwksUrl);
    return `${u.protocol}//${u.host}${u.pathname}`;
  }

  /** The owner the token names (prefix + sub), or null when it is invalid, expired, not yet valid or has no sub. */
  async verify(token: string): Promise<string | null> {
    const { errors, jwtVerify } = this.jose;
    const getKey: JWTVerifyGetKey = async (header, input) => {
      if (header.alg === "HS256") {
        if (!this.secret) throw new errors.JOSEAlgNotAllowed("HS256 needs a configured secret");
        return this.secret;
      }
      if (!this.jwks) throw new errors.JOSEAlgNotAllowed(`${header.alg} needs a configured JWKS URL`);
      return this.jwks(header, input);
    };
    try {
      const { payload } = await jwtVerify(token, getKey, {
        algorithms: this.algorithms,
        ...(this.opts.issuer ? { issuer: this.opts.issuer } : {}),
        ...(this.opts.audience ? { audience: this.opts.audience } : {}),
        ...(this.opts.requireExp !== false ? { requiredClaims: ["exp"] } : {}),
      });
      if (typeof payload.sub !== "string" || payload.sub.length === 0 || payload.sub.length > 255) return null;
      // A lone surrogate has no UTF-8 form: stored, it would become U+FFFD and merge with another owner.
      if (!payload.sub.isWellFormed()) return null;
      return `${this.opts.ownerPrefix ?? "jwt:"}${payload.sub}`;
    } catch (e) {
      if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid || (e instanceof Error && !(e instanceof errors.JOSEError))) {
        this.opts.logger?.warn("JWKS unavailable; JWT rejected", { jwks_url: this.jwksLocation(), error: errorMessage(e) });
      }
      return null;
    }
  }
}
