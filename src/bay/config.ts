/**
 * Typed configuration: the one zod schema a configuration must pass. Reading
 * it (a YAML file merged with documented environment overrides) is
 * config-load.ts's job; `loadConfig` and `ConfigError` are re-exported here.
 */
import { z } from "zod";
import { version as packageVersion } from "../../package.json";
import { isApiKeyOwner, RESERVED_OWNER_PREFIXES, reservedOwnerPrefixes } from "./domain/auth/owners.ts";

import { defaultProfiles, profileSchema } from "./config-profiles.ts";

export {
  DEFAULT_SHIP_TAG,
  defaultProfiles,
  LANGUAGES,
  type NetworkChoice,
  type ProfileConfig,
  shipImages,
} from "./config-profiles.ts";

const MiB = 1024 * 1024;
/** First path segments of Bay's own routes (the E2B prefix may not start with one; `files` is E2B's envd file route); tests/api/contract.test.ts keeps it equal to the app's routes. */
export const BAY_FIRST_SEGMENTS = ["v1", "mcp", "docs", "metrics", "health", "files", "openapi.json"];

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
        url: z
          .string()
          .min(1)
          // Calls over a WebSocket get no deadline: a server that stops answering would hold requests forever.
          .refine((u) => !/^wss?:/i.test(u), "a WebSocket URL (ws://, wss://) is not supported: use libsql://, https:// or http://")
          .default("file:./data/bay.db"),
        auth_token: z.string().optional(),
        /** libSQL server only: seconds one call may take before the request answers 503 database_unavailable (timeout). */
        call_timeout: z.number().positive().max(300).default(10),
      })
      .prefault({}),
    driver: z
      .strictObject({
        type: z.literal("docker").default("docker"),
        socket_path: z.string().default("/var/run/docker.sock"),
        /** DOCKER_HOST-style URL (tcp://… or unix://…); wins over socket_path. */
        host: z.string().optional(),
        connect_mode: z.enum(["host_port", "container_network", "unix_socket", "auto"]).default("host_port"),
        /**
         * Small calls (execs, contexts, processes) travel on one WebSocket per Ship, proven
         * once, instead of an HTTP request each (src/bay/runtime/ship-channel.ts); false: all HTTP.
         */
        ship_channel: z.boolean().default(true),
        /**
         * unix_socket mode: where Ship's sockets live on the host (one directory per
         * container under `<socket_dir>/bay-<instance id>/`). Must be a local path of the
         * Docker host, which is also Bay's host.
         */
        socket_dir: z
          .string()
          .regex(/^(\/[A-Za-z0-9_.-]+)+$/, "an absolute path of letters, digits, '_', '.', '-' and '/'")
          .refine((p) => !p.split("/").some((seg) => seg === "." || seg === ".."), "no '.' or '..' segments")
          .default("/run/bay/ships"),
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
        /**
         * Most of it one owner's uploads may hold at once (429 past it, while others
         * still upload); default half the spool, and never less than one largest upload.
         */
        max_spool_bytes_per_owner: z.number().int().positive().optional(),
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
        /**
         * Seconds between samples of each running sandbox's CPU, memory and disk, kept
         * for its metrics history (E2B's getMetrics, GET /v1/sandboxes/{id}/metrics/history);
         * 0 = no sampling. Whole seconds, so every replica's intervals line up.
         */
        sample_interval: z.union([z.literal(0), z.number().int().min(1).max(3600)]).default(5),
        /** Seconds samples are kept (a week at most; at least two intervals). */
        history: z.number().int().min(60).max(604800).default(3600),
      })
      .refine((m) => m.history >= 2 * m.sample_interval, {
        message: "metrics.history must be at least two metrics.sample_interval",
        path: ["history"],
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
          // Not under any of Bay's own first segments: `/v1/e2b` would stack /v1's auth on E2B's routes.
          .refine(
            (p) => !BAY_FIRST_SEGMENTS.includes(p.split("/")[1]!.toLowerCase()),
            "clashes with a Bay route (its first segment is Bay's)",
          )
          .default("/e2b"),
        /** Profile of E2B's default templates (`base`, `code-interpreter-v1`). */
        default_profile: z.string().default("python-default"),
        /**
         * Seconds a `runCode` may run on Bay's side (at most a day). E2B's server sets
         * none: a run ends when it ends, when its client leaves (the SDK's own
         * timeoutMs / timeout) or with its sandbox, whose timeout bounds it anyway.
         */
        run_code_timeout: z.number().int().min(1).max(86400).default(86400),
        /** Seconds an E2B sandbox lives when create names no timeout (the SDKs' own default). */
        default_timeout: z.number().int().positive().max(2592000).default(300),
        /**
         * The domain E2B's `getHost(port)` names: requests whose Host is
         * `{port}-{sandbox id}.{sandbox_domain}` reach that port in that sandbox
         * (e.g. `localhost:8000`, or `sandbox.example.com` behind a wildcard DNS
         * name). Unset: no such hosts are served and E2B's answers carry no domain.
         */
        sandbox_domain: z
          .string()
          .regex(
            /^(?=[^:]{1,253}(:|$))[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::[1-9][0-9]{0,4})?$/,
            "a lower-case host name with an optional port, like localhost:8000 or sandbox.example.com",
          )
          .optional(),
        /**
         * Requests and WebSockets of public sandboxes' visitors (no traffic token)
         * open at once on this Bay process, all sandboxes together (429 past it);
         * each public sandbox's visitors also have at most max_open_streams_per_owner.
         */
        max_public_streams: z.number().int().positive().default(1024),
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
      // An owner Bay's own rule refuses was already reported (apiKeyOwner): only the custom prefix is news here.
      if (isApiKeyOwner(k.owner) && !isApiKeyOwner(k.owner, reserved)) {
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
export function warmPoolRoomProblem(profiles: Array<{ warm_pool: { size: number } }>, maxLive: number): string | null {
  const total = profiles.reduce((n, p) => n + p.warm_pool.size, 0);
  return total > 0 && total >= maxLive
    ? `the warm pools hold ${total} sessions, leaving no room under limits.max_live_sessions (${maxLive})`
    : null;
}

export { ConfigError, loadConfig, parseWarmPoolEnv } from "./config-load.ts";
