/** JWT verification with jose: an HS256 secret or a JWKS URL; `sub` is the owner. */
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";

export interface JwtOptions {
  secret?: string | undefined;
  jwksUrl?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
}

export class JwtVerifier {
  private readonly key: Uint8Array | JWTVerifyGetKey;
  private readonly algorithms: string[] | undefined;

  constructor(private readonly opts: JwtOptions) {
    if (opts.secret) {
      this.key = new TextEncoder().encode(opts.secret);
      this.algorithms = ["HS256"];
    } else if (opts.jwksUrl) {
      this.key = createRemoteJWKSet(new URL(opts.jwksUrl));
      this.algorithms = undefined;
    } else throw new Error("JwtVerifier needs a secret or a JWKS URL");
  }

  static configured(opts: JwtOptions): boolean {
    return Boolean(opts.secret || opts.jwksUrl);
  }

  /** The token's subject, or null when it is invalid, expired, not yet valid or has no sub. */
  async verify(token: string): Promise<string | null> {
    try {
      const { payload } = await jwtVerify(token, this.key as Uint8Array, {
        ...(this.algorithms ? { algorithms: this.algorithms } : {}),
        ...(this.opts.issuer ? { issuer: this.opts.issuer } : {}),
        ...(this.opts.audience ? { audience: this.opts.audience } : {}),
      });
      return typeof payload.sub === "string" && payload.sub.length > 0 ? payload.sub : null;
    } catch {
      return null;
    }
  }
}
