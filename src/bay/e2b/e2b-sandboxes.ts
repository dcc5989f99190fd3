/**
 * E2B's sandbox lifecycle on Bay's domain: every call goes through
 * SandboxManager (owners, quotas, the warm pool, deletion) and the sandbox
 * store, exactly as Bay's own routes do; this class only translates. E2B's
 * timeout is Bay's TTL as an absolute deadline: set_timeout may move it either
 * way. A sandbox past it is expired in Bay and gone for E2B (404), and the
 * first E2B call that meets it deletes it, as E2B kills a sandbox at its end.
 */
import type { Profile } from "../domain/profiles.ts";
import type { SandboxManager } from "../domain/sandbox-manager.ts";
import { BayError, notFound } from "../errors.ts";
import type { Stores } from "../store/index.ts";
import type { SandboxRecord } from "../store/sandbox-store.ts";
import { assertEnvVars, MERGED_SET_LIMITS } from "../domain/env-vars.ts";
import type { E2bCredentials } from "./credentials.ts";
import type { E2bSandboxRecord, E2bSandboxStore } from "./store.ts";
import type { TemplateCatalogue } from "./templates.ts";

/** What create and connect answer. */
export interface E2bSandbox {
  sandboxID: string;
  templateID: string;
  clientID: string;
  alias: string;
  envdVersion: string;
  envdAccessToken: string;
  trafficAccessToken: string;
  domain: string | null;
}

/** What get and list answer. */
export interface E2bSandboxDetail {
  sandboxID: string;
  templateID: string;
  clientID: string;
  alias: string;
  envdVersion: string;
  envdAccessToken?: string;
  domain: string | null;
  startedAt: string;
  endAt: string;
  cpuCount: number;
  memoryMB: number;
  diskSizeMB: number;
  state: "running";
  metadata: Record<string, string>;
}

export interface E2bSandboxesDeps {
  sandboxes: SandboxManager;
  stores: Stores;
  e2bStore: E2bSandboxStore;
  credentials: E2bCredentials;
  templates: TemplateCatalogue;
  /** The envd version Bay reports: what it switches on in the SDKs is what Bay has. */
  envdVersion: string;
  defaultTimeoutSeconds: number;
  /** What `domain` answers (e2b.sandbox_domain): `getHost(port)` names `{port}-{id}.{domain}`. */
  sandboxDomain: string | null;
  /** Workspace size limit of a new sandbox, reported as its disk. */
  diskSizeMb: number;
  now?: () => number;
}

/** A sandbox that never ends reads as ending in 100 years (E2B has no "never"). */
const NEVER_MS = 100 * 365 * 24 * 3600 * 1000;
const CLIENT_ID = "bay";
/** Most of one owner's sandboxes read per list call (well above any per-owner quota). */
const LIST_SCAN_LIMIT = 10_000;

export interface ListQuery {
  metadata?: Record<string, string>;
  states?: string[];
  template?: string;
  limit: number;
  nextToken?: string;
  /** Only sandboxes started at or after this time (E2B's `startedAfter`, an ISO date). */
  startedAfter?: string;
  /** By start time: newest first (`desc`, the default) or oldest first. */
  order?: "asc" | "desc";
}

/** Sandboxes whose variables one process keeps (then it starts over). */
const ENV_CACHE_MAX = 10_000;

export class E2bSandboxes {
  private readonly now: () => number;
  /** Create's envVars per owner and sandbox: written once, never changed. */
  private readonly envCache = new Map<string, Record<string, string>>();
  constructor(private readonly deps: E2bSandboxesDeps) {
    this.now = deps.now ?? Date.now;
  }

  async create(
    owner: string,
    body: {
      templateID: string;
      timeout?: number;
      metadata?: Record<string, string>;
      envVars?: Record<string, string>;
      autoPause?: boolean;
      allow_internet_access?: boolean;
      network?: { allowPublicTraffic?: boolean; allowOut?: unknown[]; denyOut?: unknown[]; egressProxy?: unknown; rules?: unknown };
    },
  ): Promise<E2bSandbox> {
    if (body.autoPause === true) throw pauseUnsupported();
    // A restriction Bay cannot apply per sandbox is refused, never silently ignored.
    const refused = [
      ...(body.allow_internet_access === false ? ["allow_internet_access"] : []),
      ...["allowOut", "denyOut", "egressProxy", "rules"]
        .filter((k) => body.network?.[k as "rules"] !== undefined)
        .map((k) => `network.${k}`),
    ];
    if (refused.length > 0) {
      throw new BayError(
        "validation_error",
        `Bay does not apply per-sandbox egress rules (${refused.join(", ")}): egress is the template's profile's; use a template whose profile has network: none`,
        { details: { field: refused[0] } },
      );
    }
    // Every command, kernel and terminal of the sandbox gets them: a bad one is refused now, not at each use
    // (half the limit: a call's own are merged with them).
    assertEnvVars(body.envVars, "envVars", MERGED_SET_LIMITS);
    const profile = this.deps.templates.resolve(body.templateID);
    const ttl = body.timeout ?? this.deps.defaultTimeoutSeconds;
    // ttl 0 would mean "never" to Bay; to E2B it is "now": keep the shortest real deadline.
    const sb = await this.deps.sandboxes.create(owner, { profile: profile.id, ttl: Math.max(ttl, 1) });
    const record: E2bSandboxRecord = {
      sandboxId: sb.id,
      owner,
      templateId: body.templateID,
      metadata: body.metadata ?? {},
      envVars: body.envVars ?? {},
      // Bay's default is private (E2B's is public): a host answers without the traffic token only when asked.
      publicTraffic: body.network?.allowPublicTraffic === true,
      createdAt: sb.createdAt,
    };
    try {
      await this.deps.e2bStore.insert(record);
    } catch (e) {
      await this.deps.sandboxes.delete(owner, sb.id).catch(() => {});
      throw e;
    }
    return this.summary(sb, record);
  }

  /** A live, unexpired sandbox of this owner with its E2B row (defaults for /v1 sandboxes). */
  async require(owner: string, sandboxId: string): Promise<{ sb: SandboxRecord; row: E2bSandboxRecord }> {
    const sb = await this.deps.stores.sandboxes.findLive(owner, sandboxId, this.now());
    if (!sb) throw notFound("sandbox", sandboxId);
    if (sb.status === "expired") {
      // E2B kills a sandbox at its end: an expired one is deleted the first time E2B meets it.
      await this.deps.sandboxes.destroy(sb).catch(() => {});
      throw notFound("sandbox", sandboxId);
    }
    const row = (await this.deps.e2bStore.get(owner, sandboxId)) ?? defaultRow(sb);
    return { sb, row };
  }

  async get(owner: string, sandboxId: string): Promise<E2bSandboxDetail> {
    const { sb, row } = await this.require(owner, sandboxId);
    return { ...this.detail(sb, row), envdAccessToken: await this.deps.credentials.token("envd", sb.id) };
  }

  /**
   * Sandbox-wide environment variables (create's envVars) every process gets. A
   * create writes them once and nothing changes them, so each sandbox's are read
   * from the database once per process (a sandbox without a row is read each time).
   */
  async envVars(owner: string, sandboxId: string): Promise<Record<string, string>> {
    const key = `${owner}\n${sandboxId}`;
    const known = this.envCache.get(key);
    if (known) return known;
    const row = await this.deps.e2bStore.get(owner, sandboxId);
    if (!row) return {};
    if (this.envCache.size >= ENV_CACHE_MAX) this.envCache.clear();
    this.envCache.set(key, row.envVars);
    return row.envVars;
  }

  async kill(owner: string, sandboxId: string): Promise<void> {
    const sb = await this.deps.stores.sandboxes.findLive(owner, sandboxId, this.now());
    if (!sb) throw notFound("sandbox", sandboxId);
    await this.deps.sandboxes.destroy(sb);
  }

  /** The sandbox ends `seconds` from now, earlier or later than before. */
  async setTimeout(owner: string, sandboxId: string, seconds: number): Promise<void> {
    const { sb } = await this.require(owner, sandboxId);
    await this.deps.sandboxes.setDeadline(sb.id, this.now() + Math.max(seconds, 1) * 1000);
  }

  /** Connect: the timeout only grows (a sandbox that never ends stays so). */
  async connect(owner: string, sandboxId: string, seconds: number | undefined): Promise<E2bSandbox> {
    const { sb, row } = await this.require(owner, sandboxId);
    if (seconds !== undefined && sb.expiresAt !== null) {
      const wanted = this.now() + Math.max(seconds, 1) * 1000;
      if (wanted > sb.expiresAt) await this.deps.sandboxes.setDeadline(sb.id, wanted);
    }
    return this.summary(sb, row);
  }

  async pause(owner: string, sandboxId: string): Promise<never> {
    await this.require(owner, sandboxId);
    throw pauseUnsupported();
  }

  /** The owner's live sandboxes matching the filters, newest first (oldest first with order asc), one page. */
  async list(owner: string, q: ListQuery): Promise<{ items: E2bSandboxDetail[]; nextToken: string | null }> {
    if (q.states && !q.states.includes("running")) return { items: [], nextToken: null };
    let seen: string | undefined;
    if (q.nextToken) {
      seen = Buffer.from(q.nextToken, "base64url").toString("utf8");
      if (!/^sandbox-[0-9a-z]{1,64}$/.test(seen))
        throw new BayError("validation_error", "invalid nextToken", { details: { field: "nextToken" } });
    }
    const since = q.startedAfter === undefined ? undefined : Date.parse(q.startedAfter);
    if (since !== undefined && !Number.isFinite(since)) {
      throw new BayError("validation_error", `startedAfter must be an ISO 8601 date, got '${q.startedAfter!.slice(0, 64)}'`, {
        details: { field: "startedAfter" },
      });
    }
    // Ids sort by creation: the page after the token's id is the ids below it newest first, above it oldest first.
    const asc = q.order === "asc";
    const after = (id: string) => seen === undefined || (asc ? id > seen : id < seen);
    const all: SandboxRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.deps.sandboxes.list(owner, { limit: 200, cursor });
      all.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && all.length < LIST_SCAN_LIMIT);
    if (asc) all.reverse();
    const live = all.filter((s) => s.status !== "expired" && after(s.id) && (since === undefined || s.createdAt >= since));
    const rows = await this.deps.e2bStore.getMany(
      owner,
      live.map((s) => s.id),
    );
    const matches: E2bSandboxDetail[] = [];
    let more = false;
    for (const sb of live) {
      const row = rows.get(sb.id) ?? defaultRow(sb);
      if (q.template !== undefined && row.templateId !== q.template && sb.profileId !== q.template) continue;
      if (q.metadata && Object.entries(q.metadata).some(([k, v]) => row.metadata[k] !== v)) continue;
      if (matches.length === q.limit) {
        more = true;
        break;
      }
      matches.push(this.detail(sb, row));
    }
    const last = matches[matches.length - 1];
    return { items: matches, nextToken: more && last ? Buffer.from(last.sandboxID, "utf8").toString("base64url") : null };
  }

  private async summary(sb: SandboxRecord, row: E2bSandboxRecord): Promise<E2bSandbox> {
    const { credentials, envdVersion } = this.deps;
    return {
      sandboxID: sb.id,
      templateID: row.templateId,
      clientID: CLIENT_ID,
      alias: row.templateId,
      envdVersion,
      envdAccessToken: await credentials.token("envd", sb.id),
      trafficAccessToken: await credentials.token("traffic", sb.id),
      domain: this.deps.sandboxDomain,
    };
  }

  private detail(sb: SandboxRecord, row: E2bSandboxRecord): E2bSandboxDetail {
    const profile: Profile | undefined = this.profileOf(sb);
    return {
      sandboxID: sb.id,
      templateID: row.templateId,
      clientID: CLIENT_ID,
      alias: row.templateId,
      envdVersion: this.deps.envdVersion,
      domain: this.deps.sandboxDomain,
      startedAt: new Date(sb.createdAt).toISOString(),
      endAt: new Date(sb.expiresAt ?? sb.createdAt + NEVER_MS).toISOString(),
      cpuCount: profile?.cpus ?? 1,
      memoryMB: profile?.memory_mb ?? 0,
      diskSizeMB: this.deps.diskSizeMb,
      state: "running",
      metadata: row.metadata,
    };
  }

  private profileOf(sb: SandboxRecord): Profile | undefined {
    return this.deps.templates.list().find((t) => t.profile.id === sb.profileId)?.profile;
  }
}

function defaultRow(sb: SandboxRecord): E2bSandboxRecord {
  return {
    sandboxId: sb.id,
    owner: sb.owner,
    templateId: sb.profileId,
    metadata: {},
    envVars: {},
    publicTraffic: false,
    createdAt: sb.createdAt,
  };
}

const pauseUnsupported = () =>
  new BayError(
    "not_implemented",
    "Bay cannot pause a sandbox with its memory: stop it instead (its files stay; processes and kernel state do not), or keep it running with set_timeout",
  );
