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
  /** Tokens already computed, by kind and sandbox id: a signed-URL scan costs one SHA-256 per sandbox, not an HMAC too. */
  private readonly cache = new Map<string, string>();

  constructor(private readonly secret: () => Promise<string>) {}

  async token(kind: TokenKind, sandboxId: string): Promise<string> {
    return this.tokenWith(await this.secret(), kind, sandboxId);
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
  async checkSignature(sandboxId: string, s: SignedFileUrl, nowMs: number): Promise<boolean> {
    return (await this.signerOf(async () => [sandboxId], s, nowMs)) !== null;
  }

  /**
   * The one of the `candidates` whose access token made this file URL's signature,
   * or null. Anyone may send a signed URL, so a malformed or expired one is refused
   * before the candidates are read, and the scan runs without awaiting per sandbox.
   */
  async signerOf(candidates: () => Promise<readonly string[]>, s: SignedFileUrl, nowMs: number): Promise<string | null> {
    if (!SIGNATURE_RE.test(s.signature)) return null;
    if (s.expiration !== null && s.expiration * 1000 < nowMs) return null;
    const ids = await candidates();
    const secret = await this.secret();
    for (const id of ids) {
      if (safeEqual(s.signature, signFileUrl(s, this.tokenWith(secret, "envd", id)))) return id;
    }
    return null;
  }

  private tokenWith(secret: string, kind: TokenKind, sandboxId: string): string {
    const key = `${kind}:${sandboxId}`;
    let token = this.cache.get(key);
    if (token === undefined) {
      token = `${PREFIX[kind]}_${sandboxId}_${createHmac("sha256", secret).update(key).digest("base64url")}`;
      // Ids are never reused; forgetting them all now and then bounds the memory.
      if (this.cache.size >= MAX_CACHED_TOKENS) this.cache.clear();
      this.cache.set(key, token);
    }
    return token;
  }
}

export interface SignedFileUrl {
  path: string;
  operation: "read" | "write";
  user: string;
  signature: string;
  expiration: number | null;
}

/** `v1_` and an unpadded base64 SHA-256: what `signFileUrl` makes. */
const SIGNATURE_RE = /^v1_[A-Za-z0-9+/]{43}$/;
const MAX_CACHED_TOKENS = 100_000;

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
