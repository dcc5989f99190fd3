/**
 * `bay keys create|list|revoke`: API key management against the same database
 * and configuration as the server (BAY_CONFIG, BAY_DB_URL). A created key is
 * printed once and never again: only its SHA-256 hash is stored.
 */
import { ApiKeyService } from "../domain/auth/api-keys.ts";
import { reservedOwnerPrefixes } from "../domain/auth/owners.ts";
import { errorMessage } from "../logger.ts";
import { loadCliConfig } from "./config.ts";
import { ApiKeyStore, type ApiKeyRecord } from "../store/api-key-store.ts";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { localDatabaseFile, openDatabase, type Database } from "../store/database.ts";
import { allowOnly, type CliIo, flag, type Parsed, parseArgs, redactUrl, table, UsageError } from "./args.ts";

export const KEYS_USAGE = `usage: bay keys <command>

commands:
  keys create --owner NAME [--name LABEL] [--e2b]
                                            create an API key for NAME; prints the key once
                                            (--e2b: in E2B's form e2b_<40 hex>, for E2B SDKs that check it)
  keys list [--owner NAME] [--json]         list keys (never the key itself)
  keys revoke ID                            revoke a key by its id

Configuration comes from BAY_CONFIG and BAY_* variables, as for the server
(the database is database.url / BAY_DB_URL).`;

/** Owners are the same strings X-Owner accepts. */
const OWNER_RE = /^[A-Za-z0-9_.@:-]{1,128}$/;

const iso = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

const keyJson = (r: ApiKeyRecord) => ({
  id: r.id,
  owner: r.owner,
  name: r.name,
  prefix: r.prefix,
  created_at: iso(r.createdAt),
  last_used_at: r.lastUsedAt === null ? null : iso(r.lastUsedAt),
  revoked_at: r.revokedAt === null ? null : iso(r.revokedAt),
});

/** `argv` is what follows `keys`. Exit code: 0 ok, 1 failure, 2 bad usage or configuration. */
export async function runKeys(argv: string[], io: CliIo): Promise<number> {
  let args: Parsed;
  let command: string | undefined;
  try {
    args = parseArgs(argv, { values: ["owner", "name"], bools: ["json", "e2b"] });
    if (args.flags.has("help")) {
      io.out(KEYS_USAGE);
      return 0;
    }
    command = args.positionals.shift();
    if (!command || !["create", "list", "revoke"].includes(command)) {
      throw new UsageError(command === undefined ? "missing command" : `unknown command: keys ${command}`);
    }
    if (command === "create") {
      allowOnly(args, ["owner", "name", "e2b"], 0);
      const owner = flag(args, "owner");
      if (owner === undefined) throw new UsageError("keys create needs --owner NAME");
      if (!OWNER_RE.test(owner)) throw new UsageError("--owner must be 1-128 characters of [A-Za-z0-9_.@:-]");
      const name = flag(args, "name");
      if (name !== undefined && name.length > 200) throw new UsageError("--name must be at most 200 characters");
    } else if (command === "list") {
      allowOnly(args, ["owner", "json"], 0);
    } else {
      allowOnly(args, [], 1);
      if (args.positionals.length !== 1) throw new UsageError("keys revoke needs the key ID (see `bay keys list`)");
    }
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${KEYS_USAGE}`);
    return 2;
  }

  const config = loadCliConfig(io);
  if (!config) return 2;
  // Keys work only in the database the running Bay uses: say which one this is, and
  // when there was none (a command run from another directory than Bay's, say).
  const file = localDatabaseFile(config.database.url);
  // A file URL with credentials in it (file://user:pass@…) is shown only redacted.
  const where = file === null || config.database.url.includes("@") ? redactUrl(config.database.url) : `file:${resolve(file)}`;
  const fresh = file !== null && !existsSync(file);
  let db: Database;
  try {
    db = await openDatabase({
      url: config.database.url,
      authToken: config.database.auth_token,
      callDeadlineMs: config.database.call_timeout * 1000,
    });
  } catch (e) {
    io.err(`bay: cannot open database ${redactUrl(config.database.url)}: ${errorMessage(e)}`);
    return 1;
  }
  if (fresh) {
    io.err(
      `bay: note: there was no database at ${where}; a new, empty one was made. ` +
        "A Bay only accepts keys in its own database: run this where Bay runs, or with its BAY_DB_URL (or BAY_CONFIG).",
    );
  }
  try {
    const keys = new ApiKeyService(new ApiKeyStore(db), [], Date.now, 0, reservedOwnerPrefixes(config.auth.jwt.owner_prefix));
    if (command === "create") {
      const format = args.flags.has("e2b") ? "e2b" : "bay";
      const { record, key } = await keys.create(flag(args, "owner")!, flag(args, "name") ?? null, format);
      io.out(`id:     ${record.id}`);
      io.out(`owner:  ${record.owner}`);
      if (record.name !== null) io.out(`name:   ${record.name}`);
      io.out(`key:    ${key}`);
      io.err(`database: ${where}`);
      io.err(
        format === "e2b"
          ? "Store this key now: it is shown only once. Use it as E2B_API_KEY (or `Authorization: Bearer <key>`)."
          : "Store this key now: it is shown only once. Use it as `Authorization: Bearer <key>`.",
      );
      return 0;
    }
    if (command === "list") {
      const records = await keys.list(flag(args, "owner"));
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
