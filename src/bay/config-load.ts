/**
 * Reading the configuration: a YAML file (BAY_CONFIG) merged with documented
 * environment overrides (and BAY_WARM_POOL), then validated by config.ts's
 * schema. `loadConfig` throws a single `ConfigError` listing every problem, so
 * an operator fixes all at once.
 */
import { readFileSync } from "node:fs";
import { type BayConfig, configSchema, warmPoolRoomProblem } from "./config.ts";
import { defaultProfiles, shipImages } from "./config-profiles.ts";

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
      // Said once, however many there are (review s95 L1).
      const empty = `BAY_WARM_POOL: empty entry in "${value}" (expected profile:size, comma-separated)`;
      if (!problems.includes(empty)) problems.push(empty);
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
  ["BAY_SHIP_CHANNEL", ["driver", "ship_channel"], "boolean"],
  ["BAY_DOCKER_NETWORK", ["driver", "network"], "string"],
  ["BAY_SOCKET_DIR", ["driver", "socket_dir"], "string"],
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
  ["BAY_METRICS_SAMPLE_INTERVAL", ["metrics", "sample_interval"], "number"],
  ["BAY_METRICS_HISTORY", ["metrics", "history"], "number"],
  ["BAY_E2B_ENABLED", ["e2b", "enabled"], "boolean"],
  ["BAY_E2B_PREFIX", ["e2b", "prefix"], "string"],
  ["BAY_E2B_SANDBOX_DOMAIN", ["e2b", "sandbox_domain"], "string"],
  ["BAY_E2B_RUN_CODE_TIMEOUT", ["e2b", "run_code_timeout"], "number"],
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
 * Why the file could not be read: for a YAML error only where and what kind, never
 * the offending line, which may hold a key or a token.
 */
function configFileError(e: unknown): string {
  const pos = (e as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
  const code = (e as { code?: unknown }).code;
  if (pos) return `invalid YAML at line ${pos.line}, column ${pos.col}${typeof code === "string" ? ` (${code})` : ""}`;
  return (e as Error).message;
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
      problems.push(`${file}: ${configFileError(e)}`);
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
  // The bootstrap key's entry among auth.api_keys, so its problems name the variables.
  let bootstrapKey = -1;
  if (env.BAY_API_KEY) {
    const auth = (raw.auth ?? {}) as Record<string, unknown>;
    const keys = Array.isArray(auth.api_keys) ? [...auth.api_keys] : [];
    // Set but empty is most likely an unset shell variable (BAY_API_KEY_OWNER=$OWNER): said as such, not as a bad owner name.
    if (env.BAY_API_KEY_OWNER === "") {
      problems.push(
        `BAY_API_KEY_OWNER: set but empty; name the owner of BAY_API_KEY's sandboxes (1-128 characters of [A-Za-z0-9_.@:-]), or unset it for the owner "default"`,
      );
    }
    bootstrapKey = keys.push({ key: env.BAY_API_KEY, owner: env.BAY_API_KEY_OWNER || "default" }) - 1;
    setPath(raw, ["auth", "api_keys"], keys);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const [a, b, index, field] = issue.path;
      const bootstrap = a === "auth" && b === "api_keys" && index === bootstrapKey;
      const where = issue.path.join(".") || "(root)";
      const named = bootstrap && field === "key" ? "BAY_API_KEY" : bootstrap && field === "owner" ? "BAY_API_KEY_OWNER" : null;
      problems.push(`${named ? `${named} (${where})` : where}: ${issue.message}`);
    }
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
