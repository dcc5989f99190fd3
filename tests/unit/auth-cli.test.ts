/**
 * `bay keys …`: runCli in-process against a real libSQL file, plus one run of
 * the real entry point. Keys made by the CLI authenticate against a Bay on the
 * same database; the key itself is printed once and never listed.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../src/bay/cli.ts";
import { createTestBay, pollUntil } from "../support/harness.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDb(): { dbPath: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), "bay-cli-"));
  dirs.push(dir);
  const dbPath = join(dir, "bay.db");
  return { dbPath, env: { BAY_DB_URL: `file:${dbPath}` } };
}

async function cli(argv: string[], env: Record<string, string | undefined>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l), env });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const keyOf = (out: string) => /^key:\s+(\S+)$/m.exec(out)![1]!;
const idOf = (out: string) => /^id:\s+(\S+)$/m.exec(out)![1]!;

describe("bay keys", () => {
  test("create prints the key once with its id; list never shows the key or its hash", async () => {
    const { env, dbPath } = tempDb();
    const created = await cli(["keys", "create", "--owner", "alice", "--name", "ci runner"], env);
    expect(created.code).toBe(0);
    const key = keyOf(created.out);
    const id = idOf(created.out);
    expect(key).toStartWith("bay_");
    expect(id).toStartWith("key-");
    expect(created.err).toContain("shown only once");
    // Which database got the key, and that nothing was there before (a Bay elsewhere would refuse the key).
    expect(created.err).toContain(`database: file:${dbPath}`);
    expect(created.err).toContain(`there was no database at file:${dbPath}; a new, empty one was made`);

    const listed = await cli(["keys", "list"], env);
    expect(listed.code).toBe(0);
    expect(listed.err).not.toContain("there was no database");
    const lines = listed.out.split("\n");
    expect(lines[0]).toMatch(/^ID\s+OWNER\s+NAME\s+PREFIX\s+CREATED\s+LAST USED\s+REVOKED$/);
    expect(lines[1]).toContain(id);
    expect(lines[1]).toContain("alice");
    expect(lines[1]).toContain("ci runner");
    expect(lines[1]).toContain(key.slice(0, 10));
    expect(listed.out).not.toContain(key);
    expect(listed.out).not.toContain(new Bun.CryptoHasher("sha256").update(key).digest("hex"));

    const json = await cli(["keys", "list", "--json"], env);
    const [rec] = JSON.parse(json.out);
    expect(Object.keys(rec).sort()).toEqual(["created_at", "id", "last_used_at", "name", "owner", "prefix", "revoked_at"]);
    expect(rec).toMatchObject({ id, owner: "alice", name: "ci runner", last_used_at: null, revoked_at: null });
  });

  test("list --owner filters; an empty list says so", async () => {
    const { env } = tempDb();
    expect((await cli(["keys", "list"], env)).err).toContain("no API keys");
    await cli(["keys", "create", "--owner", "alice"], env);
    await cli(["keys", "create", "--owner=bob"], env);
    const alice = JSON.parse((await cli(["keys", "list", "--owner", "alice", "--json"], env)).out);
    expect(alice.map((k: { owner: string }) => k.owner)).toEqual(["alice"]);
    const all = JSON.parse((await cli(["keys", "list", "--json"], env)).out);
    expect(all.map((k: { owner: string }) => k.owner).sort()).toEqual(["alice", "bob"]);
  });

  test("a CLI key authenticates against a Bay on the same database; after revoke it is 401 (key cache off)", async () => {
    const { dbPath, env } = tempDb();
    const created = await cli(["keys", "create", "--owner", "alice"], env);
    const key = keyOf(created.out);
    const t = await createTestBay({ dbPath, config: { auth: { mode: "api_key", api_key_cache_seconds: 0 } } });
    try {
      const ok = await t.json("POST", "/v1/sandboxes", { body: {}, headers: { authorization: `Bearer ${key}` } });
      expect(ok.status).toBe(201);
      const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT owner FROM sandboxes WHERE id = ?", args: [ok.body.id] });
      expect(rs.rows[0]!.owner).toBe("alice");
      // The write is fire-and-forget: poll the CLI's view of it, bounded.
      const used = await pollUntil(
        async () => JSON.parse((await cli(["keys", "list", "--json"], env)).out),
        (v) => v[0]?.last_used_at != null,
        5_000,
        "last_used_at set",
      );
      expect(used[0].last_used_at).not.toBeNull();

      const revoked = await cli(["keys", "revoke", idOf(created.out)], env);
      expect(revoked.code).toBe(0);
      expect(revoked.out).toContain("revoked");
      const denied = await t.json("GET", "/v1/sandboxes", { headers: { authorization: `Bearer ${key}` } });
      expect(denied.status).toBe(401);
      expect(denied.body.error.code).toBe("unauthorized");
      const listed = JSON.parse((await cli(["keys", "list", "--json"], env)).out);
      expect(listed[0].revoked_at).not.toBeNull();
      // Revoking twice, or an unknown id, fails clearly.
      const again = await cli(["keys", "revoke", idOf(created.out)], env);
      expect(again.code).toBe(1);
      expect(again.err).toContain("no active API key");
    } finally {
      await t.close();
    }
  });

  const usage: Array<[string, string[], string]> = [
    ["keys without a command", ["keys"], "missing command"],
    ["unknown subcommand", ["keys", "rotate"], "unknown command"],
    ["create without --owner", ["keys", "create"], "needs --owner"],
    ["--owner without a value", ["keys", "create", "--owner"], "--owner needs a value"],
    ["--owner followed by another flag", ["keys", "create", "--owner", "--name", "x"], "--owner needs a value"],
    ["an invalid owner", ["keys", "create", "--owner", "bad owner!"], "--owner must be"],
    ["an unknown option", ["keys", "list", "--all"], "unknown option --all"],
    ["an option of another command", ["keys", "list", "--name", "x"], "not an option"],
    ["revoke without an id", ["keys", "revoke"], "needs the key ID"],
    ["revoke with two ids", ["keys", "revoke", "a", "b"], "unexpected argument b"],
    ["a stray argument", ["keys", "create", "--owner", "a", "extra"], "unexpected argument extra"],
  ];
  for (const [name, argv, message] of usage) {
    test(`bad usage: ${name} → exit 2 with usage`, async () => {
      const { env } = tempDb();
      const r = await cli(argv, env);
      expect(r.code).toBe(2);
      expect(r.err).toContain(message);
      expect(r.err).toContain("usage: bay keys");
      expect(r.out).toBe("");
    });
  }

  test("with the key cache (default 5 s), a key revoked by the CLI stops working within the cache time", async () => {
    const { dbPath, env } = tempDb();
    const created = await cli(["keys", "create", "--owner", "alice"], env);
    const key = keyOf(created.out);
    const t = await createTestBay({ dbPath, config: { auth: { mode: "api_key" } } });
    try {
      const headers = { authorization: `Bearer ${key}` };
      expect((await t.json("GET", "/v1/sandboxes", { headers })).status).toBe(200);
      expect((await cli(["keys", "revoke", idOf(created.out)], env)).code).toBe(0);
      const denied = await pollUntil(
        async () => (await t.json("GET", "/v1/sandboxes", { headers })).status,
        (status) => status === 401,
        t.config.auth.api_key_cache_seconds * 1000 + 10_000,
        "the revoked key refused",
      );
      expect(denied).toBe(401);
    } finally {
      await t.close();
    }
  }, 30_000);
  test("with a custom auth.jwt.owner_prefix, a key for an owner under that prefix is refused (a JWT subject would share it)", async () => {
    const { env } = tempDb();
    const config = join(dirs[dirs.length - 1]!, "bay.yaml");
    await Bun.write(config, 'auth:\n  jwt:\n    owner_prefix: "corp-"\n');
    const refused = await cli(["keys", "create", "--owner", "corp-alice"], { ...env, BAY_CONFIG: config });
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("corp-");
    expect(refused.out).not.toContain("key:");
    expect((await cli(["keys", "create", "--owner", "alice"], { ...env, BAY_CONFIG: config })).code).toBe(0);
    // With Bay's default prefix, "corp-alice" is an ordinary owner name.
    expect((await cli(["keys", "create", "--owner", "corp-alice"], env)).code).toBe(0);
  });

  test("an unknown command → exit 2 with the list of commands", async () => {
    const r = await cli(["users", "list"], {});
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown command: users");
    expect(r.err).toContain("keys create|list|revoke");
    expect(r.out).toBe("");
  });

  test("version, --version and -V print the package's version", async () => {
    const { version } = await import("../../package.json");
    for (const argv of [["version"], ["--version"], ["-V"]])
      expect(await cli(argv, {})).toEqual({ code: 0, out: `bay ${version}`, err: "" });
  });

  test("--help prints usage and exits 0; `keys --help` and `help keys` the keys usage", async () => {
    const r = await cli(["--help"], {});
    expect(r.code).toBe(0);
    for (const command of ["serve", "keys", "images build", "doctor", "sandbox", "mcp", "version"]) expect(r.out).toContain(command);
    expect(r.out).toContain("sandbox create|ls|exec|shell|stats|cp|forward|rm");
    for (const argv of [
      ["keys", "--help"],
      ["help", "keys"],
    ]) {
      const k = await cli(argv, {});
      expect(k.code).toBe(0);
      expect(k.out).toContain("keys create --owner NAME");
    }
  });

  test("invalid configuration → exit 2 listing the problem", async () => {
    const r = await cli(["keys", "list"], { BAY_PORT: "not-a-port", BAY_DB_URL: "file:/nonexistent/x.db" });
    expect(r.code).toBe(2);
    expect(r.err).toContain("BAY_PORT");
  });

  test("an unopenable database → exit 1 with a clear message", async () => {
    const r = await cli(["keys", "list"], { BAY_DB_URL: "ftp://nowhere" });
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot open database");
  });

  test("the real entry point (`bun run bay …`) reads BAY_DB_URL and sets the exit code", async () => {
    const { env } = tempDb();
    const root = join(import.meta.dir, "../..");
    const run = (args: string[]) =>
      Bun.spawnSync(["bun", "run", "src/bay/cli.ts", ...args], {
        cwd: root,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      });
    const created = run(["keys", "create", "--owner", "ci"]);
    expect(created.exitCode).toBe(0);
    const key = keyOf(created.stdout.toString());
    const listed = run(["keys", "list"]);
    expect(listed.exitCode).toBe(0);
    expect(listed.stdout.toString()).toContain("ci");
    expect(listed.stdout.toString()).not.toContain(key);
    const bad = run(["keys"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("usage: bay keys");
  });
});
