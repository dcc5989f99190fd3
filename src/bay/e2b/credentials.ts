/**
 * Per-sandbox credentials of the E2B data plane. The envd access token
 * (`X-Access-Token`) and the traffic token (`E2B-Traffic-Access-Token`) are
 * `<kind>_<sandbox id>_<HMAC of the id under the installation's secret>`: every
 * replica mints and checks the same tokens, none is stored, connect can hand
 * them out again, and a request that names no sandbox (older SDKs' envd HTTP
 * calls send only the token) is still tied to exactly one. File URLs are signed by clients with the access token, as E2B's SDKs do:
 * `v1_` + base64(SHA-256("path:operation:user:token[:expiration]")), unpadded.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export type TokenKind = "envd" | "traffic";
const PREFIX: Record<TokenKind, string> = { envd: "ea", traffic: "ta" };

export class E2bCredentials {
  constructor(private readonly secret: () => Promise<string>) {}

  async token(kind: TokenKind, sandboxId: string): Promise<string> {
    const mac = createHmac("sha256", await this.secret())
      .update(`${kind}:${sandboxId}`)
      .digest("base64url");
    return `${PREFIX[kind]}_${sandboxId}_${mac}`;
  }

  /** The sandbox a token names (unchecked: `check` says whether it is genuine). */
  static sandboxOf(token: string | undefined): string | undefined {
    const m = /^(?:ea|ta)_(sandbox-[0-9a-z]{1,64})_[A-Za-z0-9_-]+$/.exec(token ?? "");
    return m?.[1];
  }

  /** Whether `presented` is this sandbox's token of that kind (constant time). */
  async check(kind: TokenKind, sandboxId: string, presented: string | undefined): Promise<boolean> {
    if (!presented || presented.length > 256) return false;
    return safeEqual(presented, await this.token(kind, sandboxId));
  }

  /**
   * Whether a file URL's signature was made with this sandbox's access token for
   * this path, operation and user, and has not expired (`expiration`: unix seconds).
   */
  async checkSignature(
    sandboxId: string,
    s: { path: string; operation: "read" | "write"; user: string; signature: string; expiration: number | null },
    nowMs: number,
  ): Promise<boolean> {
    if (s.expiration !== null && s.expiration * 1000 < nowMs) return false;
    return safeEqual(s.signature, signFileUrl(s, await this.token("envd", sandboxId)));
  }
}

/** The signature an E2B SDK puts on a file URL (`uploadUrl` / `downloadUrl`). */
export function signFileUrl(
  s: { path: string; operation: "read" | "write"; user: string; expiration: number | null },
  accessToken: string,
): string {
  const raw = `${s.path}:${s.operation}:${s.user}:${accessToken}${s.expiration === null ? "" : `:${s.expiration}`}`;
  return `v1_${createHash("sha256").update(raw).digest("base64").replace(/=+$/, "")}`;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
