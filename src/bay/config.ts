/**
 * Typed configuration: a YAML file (BAY_CONFIG) merged with documented
 * environment overrides, validated by one zod schema. `loadConfig` throws a
 * single `ConfigError` listing every problem, so an operator fixes all at once.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { version as packageVersion } from "../../package.json";
import { isApiKeyOwner, RESERVED_OWNER_PREFIXES, reservedOwnerPrefixes } from "./domain/auth/owners.ts";

import { defaultProfiles, profileSchema, shipImages } from "./config-profiles.ts";

export {
  DEFAULT_SHIP_TAG,
  defaultProfiles,
  LANGUAGES,
  type NetworkChoice,
  type ProfileConfig,
  shipImages,
} from "./config-profiles.ts";

const MiB = 1024 * 1024;

const apiKeyOwner = z
  .string()
  .refine(isApiKeyOwner, `owner must be 1-128 characters of [A-Za-z0-9_.@:-], not starting with ${RESERVED_OWNER_PREFIXES.join(" or ")}`);

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(8000),
        /** Sent in /health; overridable for packaging. */
        version: z.string().default(packageVersion),
        /**
         * Host header values accepted in anonymous mode (DNS rebinding: a web page must
         * not reach a local Bay through a name it controls). `server.host` is always accepted.
         */
        allowed_hosts: z.array(z.string().min(1)).default(["localhost", "127.0.0.1", "[::1]"]),
        /** Origins allowed to call Bay from a browser (CORS); empty: CORS off. */
        cors_origins: z.array(z.string().min(1)).default([]),
        /** Request line plus headers, at most (400 past it). */
        max_header_bytes: z
          .number()
          .int()
          .min(4096)
          .max(1024 * 1024)
          .default(64 * 1024),
        /** Seconds a connection may sit idle (no byte either way) before it is closed; calls to a sandbox have their own deadlines. */
        idle_timeout: z.number().int().min(1).max(255).default(30),
      })
      .prefault({}),
    database: z
      .strictObject({
        /** libSQL URL: file:…, :memory:, libsql://…, http://… */
        url: z.string().min(1).default("file:./data/bay.db"),
        auth_token: z.string().optional(),
      })
      .prefault({}),
    driver: z
      .strictObject({
        type: z.literal("docker").default("docker"),
        socket_path: z.string().default("/var/run/docker.sock"),
        /** DOCKER_HOST-style URL (tcp://… or unix://…); wins over socket_path. */
        host: z.string().optional(),
        connect_mode: z.enum(["host_port", "container_network", "auto"]).default("host_port"),
        network: z.string().optional(),
        /**
         * Names this Bay installation in container/volume labels; reconcile only
         * touches its own. Unset: the id generated once per database, so replicas
         * sharing a database agree and separate databases never collide.
         */
        instance_id: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/)
          .optional(),
        /** Seconds to wait for a fresh Ship to answer /health and /meta. */
        ready_timeout: z.number().positive().default(30),
        /** Image of the short-lived helpers of the workspace data plane (needs sh, GNU find/head/rm/du and uid 1000). */
        helper_image: z.string().min(1).default("bay-ship:latest"),
        /**
         * Seconds each Docker call may take: past it a lifecycle call answers 503 driver_unavailable
         * (reason engine_timeout), a workspace data-plane call 504 timeout (a transfer may stall no longer).
         */
        call_timeout: z.number().positive().default(30),
        /** Seconds a workspace data-plane helper command (a delete, measuring usage) may run; then 504 timeout. */
        helper_timeout: z.number().positive().default(120),
        /** Sandbox container logs rotate at this size (json-file driver)… */
        log_max_size_mb: z.number().int().min(1).max(1024).default(10),
        /** …keeping this many files. */
        log_max_files: z.number().int().min(1).max(20).default(3),
      })
      .prefault({}),
    profiles: z
      .array(profileSchema)
      .min(1)
      // In the schema, not after it, so a duplicate is reported together with every other problem.
      .superRefine((profiles, ctx) => {
        const ids = profiles.map((p) => p.id);
        const dupes = [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
        if (dupes.length) ctx.addIssue({ code: "custom", message: `duplicate id ${dupes.join(", ")}` });
      })
      .prefault(defaultProfiles()),
    limits: z
      .strictObject({
        max_body_bytes: z
          .number()
          .int()
          .positive()
          .default(2 * MiB),
        max_upload_bytes: z
          .number()
          .int()
          .positive()
          .default(1024 * MiB),
        max_file_bytes: z
          .number()
          .int()
          .positive()
          .default(2 * MiB),
        /** Most upload bytes this process keeps on its disk at once (files sent before their path, workspace uploads). */
        max_spool_bytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * MiB),
        /** Parent directory of the upload spool; default <tmpdir>/bay-spool. */
        spool_dir: z.string().min(1).optional(),
        max_sandboxes_per_owner: z.number().int().positive().default(50),
        /** Live workspaces per owner, managed and external together. */
        max_workspaces_per_owner: z.number().int().positive().default(100),
        rate_limit_per_minute: z.number().int().positive().default(600),
        /** Default size_limit_mb of a new workspace… */
        workspace_size_limit_mb: z.number().int().positive().default(1024),
        /** …and the most a client may ask for. */
        max_workspace_size_limit_mb: z.number().int().positive().default(10240),
        /** Seconds a workspace directory listing may take; then 504 timeout. */
        listing_timeout: z.number().positive().default(30),
        /** Sessions running or starting at once, all owners together (503 + Retry-After past it). */
        max_live_sessions: z.number().int().positive().default(200),
        /** Sessions one owner may be starting at once (429 + Retry-After past it). */
        max_concurrent_starts_per_owner: z.number().int().positive().default(8),
        /** Event streams, followed outputs, watches and terminals one owner may hold open at once per Bay process (429 past it). */
        max_open_streams_per_owner: z.number().int().positive().default(64),
      })
      .prefault({}),
    auth: z
      .strictObject({
        mode: z.enum(["api_key", "anonymous"]).default("api_key"),
        /** Bootstrap keys accepted alongside stored ones: `{key, owner}`. */
        api_keys: z.array(z.strictObject({ key: z.string().min(16), owner: apiKeyOwner })).default([]),
        default_owner: z.string().min(1).default("default"),
        /**
         * Seconds a stored API key found valid is trusted before the database is asked
         * again: a key revoked elsewhere (`bay keys revoke`, another replica) stops
         * working within this; one revoked by this process at once. 0: ask every time.
         */
        api_key_cache_seconds: z.number().min(0).max(300).default(5),
        jwt: z
          .strictObject({
            secret: z.string().min(16).optional(),
            jwks_url: z.string().url().optional(),
            issuer: z.string().optional(),
            audience: z.string().optional(),
            /** A token without `exp` never expires: refused unless this is false. */
            require_exp: z.boolean().default(true),
            /**
             * Put before `sub` to make the owner, so a JWT subject never names an API-key
             * owner by accident. Set "" to share one owner namespace on purpose.
             */
            owner_prefix: z.string().default("jwt:"),
          })
          .prefault({}),
      })
      .prefault({}),
    idempotency: z.strictObject({ ttl_seconds: z.number().int().positive().default(86400) }).prefault({}),
    lifecycle: z
      .strictObject({
        reaper_interval: z.number().positive().default(15),
        /** What happens to a managed workspace when its sandbox expires. */
        expired_workspace: z.enum(["keep", "delete"]).default("keep"),
        /** Warm-pool members this process starts at once (all profiles together). */
        warm_pool_concurrency: z.number().int().min(1).max(64).default(2),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(["debug", "info", "warn", "error"]).default("info"),
        /** `json`: one JSON object per line (default); `pretty`: short human lines for local runs. */
        format: z.enum(["json", "pretty"]).default("json"),
        /** One access line per request (at info level). */
        access: z.boolean().default(true),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        /**
         * Bearer token GET /metrics requires from every peer. Unset: /metrics
         * answers loopback peers only (and never a request relayed by a proxy).
         */
        token: z.string().min(16).optional(),
        /** Seconds the database-derived gauges (bay_sandboxes) are reused between scrapes; 0 = query on every scrape. */
        cache_seconds: z.number().min(0).max(3600).default(5),
      })
      .prefault({}),
    /** The E2B-compatible API (official E2B SDKs, unmodified) on Bay's own port. */
    e2b: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Where it is mounted: E2B_API_URL and E2B_SANDBOX_URL point at http://<bay><prefix>. */
        prefix: z
          .string()
          .regex(/^\/[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, "a path like /e2b")
          .refine(
            (p) => !["/v1", "/mcp", "/docs", "/metrics", "/health", "/files", "/openapi.json"].includes(p),
            "clashes with a Bay route",
          )
          .default("/e2b"),
        /** Profile of E2B's default templates (`base`, `code-interpreter-v1`). */
        default_profile: z.string().default("python-default"),
        /** Seconds an E2B sandbox lives when create names no timeout (the SDKs' own default). */
        default_timeout: z.number().int().positive().max(2592000).default(300),
      })
      .prefault({}),
  })
  // Rules across sections, checked with every other problem.
  .superRefine((c, ctx) => {
    if (c.auth.jwt.jwks_url && (!c.auth.jwt.issuer || !c.auth.jwt.audience)) {
      ctx.addIssue({
        code: "custom",
        path: ["auth", "jwt"],
        message: "with a JWKS URL, issuer and audience are required (an identity provider's keys sign tokens for other services too)",
      });
    }
    const reserved = reservedOwnerPrefixes(c.auth.jwt.owner_prefix);
    c.auth.api_keys.forEach((k, i) => {
      if (!isApiKeyOwner(k.owner, reserved)) {
        ctx.addIssue({
          code: "custom",
          path: ["auth", "api_keys", i, "owner"],
          message: `an API key's owner may not start with auth.jwt.owner_prefix "${c.auth.jwt.owner_prefix}" (a JWT subject would name the same owner)`,
        });
      }
    });
    const pooled = warmPoolRoomProblem(c.profiles, c.limits.max_live_sessions);
    if (pooled) ctx.addIssue({ code: "custom", path: ["profiles"], message: pooled });
    if (c.limits.workspace_size_limit_mb > c.limits.max_workspace_size_limit_mb) {
      ctx.addIssue({
        code: "custom",
        path: ["limits", "workspace_size_limit_mb"],
        message: "larger than limits.max_workspace_size_limit_mb",
      });
    }
  });

export type BayConfig = z.infer<typeof configSchema>;

/** The warm pools must leave owners room under the live-session cap; the problem, or null. */
function warmPoolRoomProblem(profiles: Array<{ warm_pool: { size: number } }>, maxLive: number): string | null {
  const total = profiles.reduce((n, p) => n + p.warm_pool.size, 0);
  return total > 0 && total >= maxLive
    ? `the warm pools hold ${total} sessions, leaving no room under limits.max_live_sessions (${maxLive})`
    : null;
}

/**
 * Parses `BAY_WARM_POOL` ("python-default:4,python-data:1"): pool sizes by
 * profile id. Every problem is reported, each naming the entry it is about.
 */
export function parseWarmPoolEnv(value: string, known: readonly string[]): { sizes: Map<string, number>; problems: string[] } {
  const sizes = new Map<string, number>();
  const problems: string[] = [];
  const where = (entry: string) => `BAY_WARM_POOL: "${entry}"`;
  for (const raw of value.split(",")) {
    const entry = raw.trim();
    if (entry === "") {
      problems.push(`BAY_WARM_POOL: empty entry in "${value}" (expected profile:size, comma-separated)`);
      continue;
    }
    const colon = entry.lastIndexOf(":");
    if (colon <= 0) {
      problems.push(`${where(entry)}: expected profile:size, e.g. python-default:4`);
      continue;
    }
    const id = entry.slice(0, colon).trim();
    const size = entry.slice(colon + 1).trim();
    if (!known.includes(id)) problems.push(`${where(entry)}: unknown profile "${id}" (known: ${known.join(", ")})`);
    else if (!/^\d{1,4}$/.test(size) || Number(size) > 1000) problems.push(`${where(entry)}: size must be a whole number from 0 to 1000`);
    else if (sizes.has(id)) problems.push(`${where(entry)}: profile "${id}" is named twice`);
    else sizes.set(id, Number(size));
  }
  return { sizes, problems };
}

/** Thrown when configuration is invalid; `problems` lists every issue. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid Bay configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

type Env = Record<string, string | undefined>;

/** Environment overrides: documented in README (Configuration). */
const ENV_OVERRIDES: Array<[string, string[], "string" | "number" | "boolean"]> = [
  ["BAY_HOST", ["server", "host"], "string"],
  ["BAY_PORT", ["server", "port"], "number"],
  ["BAY_DB_URL", ["database", "url"], "string"],
  ["BAY_DB_AUTH_TOKEN", ["database", "auth_token"], "string"],
  ["DOCKER_HOST", ["driver", "host"], "string"],
  ["BAY_DOCKER_SOCKET", ["driver", "socket_path"], "string"],
  ["BAY_CONNECT_MODE", ["driver", "connect_mode"], "string"],
  ["BAY_DOCKER_NETWORK", ["driver", "network"], "string"],
  ["BAY_INSTANCE_ID", ["driver", "instance_id"], "string"],
  ["BAY_READY_TIMEOUT", ["driver", "ready_timeout"], "number"],
  ["BAY_HELPER_IMAGE", ["driver", "helper_image"], "string"],
  ["BAY_AUTH_MODE", ["auth", "mode"], "string"],
  ["BAY_DEFAULT_OWNER", ["auth", "default_owner"], "string"],
  ["BAY_JWT_SECRET", ["auth", "jwt", "secret"], "string"],
  ["BAY_JWKS_URL", ["auth", "jwt", "jwks_url"], "string"],
  ["BAY_JWT_ISSUER", ["auth", "jwt", "issuer"], "string"],
  ["BAY_JWT_AUDIENCE", ["auth", "jwt", "audience"], "string"],
  ["BAY_REAPER_INTERVAL", ["lifecycle", "reaper_interval"], "number"],
  ["BAY_LOG_LEVEL", ["log", "level"], "string"],
  ["BAY_LOG_FORMAT", ["log", "format"], "string"],
  ["BAY_LOG_ACCESS", ["log", "access"], "boolean"],
  ["BAY_METRICS_TOKEN", ["metrics", "token"], "string"],
  ["BAY_E2B_ENABLED", ["e2b", "enabled"], "boolean"],
  ["BAY_E2B_PREFIX", ["e2b", "prefix"], "string"],
];

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/**
 * The `yaml` package's parse, loaded on first use: a Bay configured by its
 * environment alone never loads the parser (~9 MiB of resident memory).
 */
function parseYamlFile(text: string): unknown {
  const { parse } = require("yaml") as typeof import("yaml");
  return parse(text);
}

/**
 * Loads configuration from an optional YAML file and the environment.
 * @param env usually `process.env`
 * @param file YAML path; defaults to env.BAY_CONFIG
 */
export function loadConfig(env: Env, file: string | undefined = env.BAY_CONFIG): BayConfig {
  const problems: string[] = [];
  let raw: Record<string, unknown> = {};
  if (file) {
    try {
      const parsed: unknown = parseYamlFile(readFileSync(file, "utf8"));
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== "object" || Array.isArray(parsed)) problems.push(`${file}: top level must be a mapping`);
        else raw = parsed as Record<string, unknown>;
      }
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
    }
  }
  for (const [name, path, kind] of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    if (kind === "number") {
      const n = Number(value);
      if (!Number.isFinite(n)) problems.push(`${name}: expected a number, got "${value}"`);
      else setPath(raw, path, n);
    } else if (kind === "boolean") {
      const v = value.toLowerCase();
      if (TRUE.has(v)) setPath(raw, path, true);
      else if (FALSE.has(v)) setPath(raw, path, false);
      else problems.push(`${name}: expected true or false, got "${value}"`);
    } else setPath(raw, path, value);
  }
  // Another build of Bay's own images: the default profiles and the helper follow it.
  if (env.BAY_SHIP_TAG) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(env.BAY_SHIP_TAG))
      problems.push(`BAY_SHIP_TAG: not a Docker tag: "${env.BAY_SHIP_TAG}"`);
    else {
      raw.profiles ??= defaultProfiles(env.BAY_SHIP_TAG);
      const driver = (raw.driver ?? {}) as Record<string, unknown>;
      if (driver.helper_image === undefined) setPath(raw, ["driver", "helper_image"], shipImages(env.BAY_SHIP_TAG).ship);
    }
  }
  if (env.BAY_API_KEY) {
    const auth = (raw.auth ?? {}) as Record<string, unknown>;
    const keys = Array.isArray(auth.api_keys) ? [...auth.api_keys] : [];
    keys.push({ key: env.BAY_API_KEY, owner: env.BAY_API_KEY_OWNER ?? "default" });
    setPath(raw, ["auth", "api_keys"], keys);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  const config = result.data;
  if (env.BAY_WARM_POOL !== undefined && env.BAY_WARM_POOL.trim() !== "") {
    const { sizes, problems: poolProblems } = parseWarmPoolEnv(
      env.BAY_WARM_POOL,
      config.profiles.map((p) => p.id),
    );
    if (poolProblems.length) throw new ConfigError(poolProblems);
    for (const p of config.profiles) {
      const size = sizes.get(p.id);
      if (size !== undefined) p.warm_pool.size = size;
    }
    const room = warmPoolRoomProblem(config.profiles, config.limits.max_live_sessions);
    if (room) throw new ConfigError([`BAY_WARM_POOL: ${room}`]);
  }
  return config;
}
