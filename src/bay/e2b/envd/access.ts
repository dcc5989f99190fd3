/**
 * Who may use a sandbox's data plane (envd, the code interpreter): whoever
 * presents its access token (`X-Access-Token`) or, for the interpreter, its
 * traffic token. The token is checked for the named sandbox before the database
 * is read, so a wrong token learns nothing about which ids exist; the owner is
 * the sandbox's own. `Authorization: Basic <user>:` (the SDKs send it when a
 * `user` is passed) names the Linux user and is never read as a Bay credential.
 */
import type { CallContext } from "../../domain/capability-router.ts";
import { BayError, notFound } from "../../errors.ts";
import type { SandboxRecord, SandboxStore } from "../../store/sandbox-store.ts";
import { E2bCredentials } from "../credentials.ts";

/**
 * The sandbox a data-plane credential named, any owner's, or 404 when it is gone
 * (deleted or past its deadline): the one check of every E2B data-plane door
 * (tokens, signed file URLs, sandbox hosts).
 */
export async function liveSandbox(sandboxes: SandboxStore, id: string, now: number): Promise<SandboxRecord> {
  const sb = await sandboxes.get(id, now);
  if (!sb || sb.deletedAt !== null || sb.status === "expired") throw notFound("sandbox", id);
  return sb;
}

/** The user Bay runs everything as, whatever a client names. */
export const SANDBOX_USER = "user";

export interface DataPlaneRequest {
  sandboxId: string | undefined;
  accessToken: string | undefined;
  trafficToken?: string | undefined;
  authorization: string | undefined;
  requestId: string;
  signal?: AbortSignal;
}

export interface DataPlaneCall extends CallContext {
  /** The user a client asked for (Basic auth), checked: only the sandbox user. */
  user: string;
}

export class DataPlaneAccess {
  constructor(
    private readonly credentials: E2bCredentials,
    private readonly sandboxes: SandboxStore,
    /** The owner's rate limit (the same buckets as Bay's API); throws when over. */
    private readonly rateLimit: (owner: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Charges a data-plane request to its owner's rate limit (for callers that authorize otherwise, e.g. signed URLs). */
  charge(owner: string): void {
    this.rateLimit(owner);
  }

  /**
   * The sandbox whose token the request presents, or 401 (no or wrong token), from the
   * headers alone, before the database is read.
   */
  private async admit(r: DataPlaneRequest, kinds: Array<"envd" | "traffic"> = ["envd"]): Promise<string> {
    // Older SDKs send envd's HTTP calls with the token alone; the token names its sandbox.
    const id = r.sandboxId ?? E2bCredentials.sandboxOf(r.accessToken) ?? E2bCredentials.sandboxOf(r.trafficToken);
    if (!id || id.length > 128) throw new BayError("unauthorized", "missing E2b-Sandbox-Id header and sandbox access token");
    const presented: Array<["envd" | "traffic", string | undefined]> = [];
    if (kinds.includes("envd")) presented.push(["envd", r.accessToken]);
    if (kinds.includes("traffic")) presented.push(["traffic", r.trafficToken]);
    let ok = false;
    for (const [kind, token] of presented) if (await this.credentials.check(kind, id, token)) ok = true;
    if (!ok) throw new BayError("unauthorized", "missing or wrong sandbox access token");
    return id;
  }

  /**
   * The call context for a request, or 401 (no or wrong token) / 404 (sandbox gone) / 403 (root),
   * charged to its owner's rate limit.
   */
  async authorize(r: DataPlaneRequest, kinds: Array<"envd" | "traffic"> = ["envd"]): Promise<DataPlaneCall> {
    const id = await this.admit(r, kinds);
    const sb = await liveSandbox(this.sandboxes, id, this.now());
    this.rateLimit(sb.owner);
    return { owner: sb.owner, sandboxId: id, requestId: r.requestId, signal: r.signal, user: requestedUser(r.authorization) };
  }
}

/**
 * The user named by `Authorization: Basic base64(user:)`. Bay runs sandbox code as
 * one unprivileged user: `user` (E2B's default) or none is that user; `root` is
 * refused rather than silently run unprivileged.
 */
export function requestedUser(authorization: string | undefined): string {
  if (!authorization) return SANDBOX_USER;
  const m = /^Basic\s+([A-Za-z0-9+/=]{0,512})$/i.exec(authorization.trim());
  if (!m) throw new BayError("validation_error", "Authorization on the sandbox data plane must be Basic <user>:");
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const user = decoded.split(":")[0] ?? "";
  if (user === "" || user === SANDBOX_USER) return SANDBOX_USER;
  if (user === "root") {
    throw new BayError("forbidden", "Bay runs sandbox code as an unprivileged user (uid 1000); user 'root' is not available");
  }
  throw new BayError("validation_error", `unknown user '${user.slice(0, 64)}': the sandbox has one user, 'user'`);
}
