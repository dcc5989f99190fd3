/**
 * The `bay` command line: API key management against the same database and
 * configuration as the server (`loadConfig(process.env)`, BAY_CONFIG, BAY_DB_URL).
 *
 *   bun run bay keys create --owner NAME [--name LABEL]
 *   bun run bay keys list [--owner NAME] [--json]
 *   bun run bay keys revoke ID
 *
 * A created key is printed once and never again: only its SHA-256 hash is stored.
 */
import { ConfigError, loadConfig, type BayConfig } from "./config.ts";
import { ApiKeyService } from "./domain/auth/api-keys.ts";
import { errorMessage } from "./logger.ts";
import { ApiKeyStore, type ApiKeyRecord } from "./store/api-key-store.ts";
import { openDatabase, type Database } from "./store/database.ts";

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: Record<string, string | undefined>;
}

export const USAGE = `usage: bay keys <command>

commands:
  keys create --owner NAME [--name LABEL]   create an API key for NAME; prints the key once
  keys list [--owner NAME] [--json]         list keys (never the key itself)
  keys revoke ID                            revoke a key by its id

Configuration comes from BAY_CONFIG and BAY_* variables, as for the server
(the database is database.url / BAY_DB_URL).`;

/** Owners are the same strings X-Owner accepts. */
const OWNER_RE = /^[A-Za-z0-9_.@:-]{1,128}$/;

class UsageError extends Error {}

interface Parsed {
  positionals: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(["owner", "name"]);
const BOOL_FLAGS = new Set(["json", "help"]);

function parseArgs(argv: string[]): Parsed {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h") {
      flags.set("help", true);
      continue;
    }
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (BOOL_FLAGS.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (VALUE_FLAGS.has(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || value === "" || (eq === -1 && value.startsWith("--"))) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else throw new UsageError(`unknown option ${arg}`);
  }
  return { positionals, flags };
}

function allowOnly(p: Parsed, allowed: string[], maxPositionals: number): void {
  for (const f of p.flags.keys()) if (!allowed.includes(f)) throw new UsageError(`--${f} is not an option of this command`);
  if (p.positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${p.positionals[maxPositionals]}`);
}

const iso = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
}

const keyJson = (r: ApiKeyRecord) => ({
  id: r.id,
  owner: r.owner,
  name: r.name,
  prefix: r.prefix,
  created_at: iso(r.createdAt),
  last_used_at: r.lastUsedAt === null ? null : iso(r.lastUsedAt),
  revoked_at: r.revokedAt === null ? null : iso(r.revokedAt),
});

/**
 * Runs the CLI with `argv` (without the runtime and script), writing through `io`.
 * Returns the exit code: 0 ok, 1 failure, 2 bad usage or configuration.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${USAGE}`);
    return 2;
  }
  const [group, command, ...rest] = parsed.positionals;
  if (parsed.flags.has("help") || group === "help") {
    io.out(USAGE);
    return 0;
  }
  if (group !== "keys" || !command || !["create", "list", "revoke"].includes(command)) {
    io.err(`bay: ${group === undefined ? "missing command" : `unknown command: ${parsed.positionals.slice(0, 2).join(" ")}`}\n\n${USAGE}`);
    return 2;
  }
  const args: Parsed = { positionals: rest, flags: parsed.flags };
  try {
    if (command === "create") {
      allowOnly(args, ["owner", "name"], 0);
      const owner = args.flags.get("owner");
      if (typeof owner !== "string") throw new UsageError("keys create needs --owner NAME");
      if (!OWNER_RE.test(owner)) throw new UsageError("--owner must be 1-128 characters of [A-Za-z0-9_.@:-]");
      const name = args.flags.get("name");
      if (typeof name === "string" && name.length > 200) throw new UsageError("--name must be at most 200 characters");
    } else if (command === "list") {
      allowOnly(args, ["owner", "json"], 0);
    } else {
      allowOnly(args, [], 1);
      if (args.positionals.length !== 1) throw new UsageError("keys revoke needs the key ID (see `bay keys list`)");
    }
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${USAGE}`);
    return 2;
  }

  let config: BayConfig;
  try {
    config = loadConfig(io.env);
  } catch (e) {
    io.err(e instanceof ConfigError ? e.message : `bay: cannot load configuration: ${errorMessage(e)}`);
    return 2;
  }
  let db: Database;
  try {
    db = await openDatabase({ url: config.database.url, authToken: config.database.auth_token });
  } catch (e) {
    io.err(`bay: cannot open database ${redactUrl(config.database.url)}: ${errorMessage(e)}`);
    return 1;
  }
  try {
    const keys = new ApiKeyService(new ApiKeyStore(db));
    if (command === "create") {
      const name = args.flags.get("name");
      const { record, key } = await keys.create(args.flags.get("owner") as string, typeof name === "string" ? name : null);
      io.out(`id:     ${record.id}`);
      io.out(`owner:  ${record.owner}`);
      if (record.name !== null) io.out(`name:   ${record.name}`);
      io.out(`key:    ${key}`);
      io.err("Store this key now: it is shown only once. Use it as `Authorization: Bearer <key>`.");
      return 0;
    }
    if (command === "list") {
      const owner = args.flags.get("owner");
      const records = await keys.list(typeof owner === "string" ? owner : undefined);
      if (args.flags.has("json")) {
        io.out(JSON.stringify(records.map(keyJson), null, 2));
        return 0;
      }
      if (records.length === 0) {
        io.err("no API keys");
        return 0;
      }
      const header = ["ID", "OWNER", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED"];
      const rows = records.map((r) => [
        r.id,
        r.owner,
        r.name ?? "-",
        `${r.prefix}…`,
        iso(r.createdAt),
        iso(r.lastUsedAt),
        iso(r.revokedAt),
      ]);
      for (const line of table([header, ...rows])) io.out(line);
      return 0;
    }
    const id = args.positionals[0]!;
    if (!(await keys.revoke(id))) {
      io.err(`bay: no active API key with id ${id}`);
      return 1;
    }
    io.out(`revoked ${id}`);
    return 0;
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}`);
    return 1;
  } finally {
    db.close();
  }
}

/** Database URLs may carry credentials. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@").replace(/([?&](authToken|token)=)[^&]*/gi, "$1***");
}

if (import.meta.main) {
  const code = await runCli(process.argv.slice(2), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  });
  process.exit(code);
}
