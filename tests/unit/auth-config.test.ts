/**
 * Auth configuration from the environment: the BAY_API_KEY bootstrap key, its
 * owner, and the JWT settings, as loadConfig reads them for the server and the CLI.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../src/bay/config.ts";
import { ApiKeyService } from "../../src/bay/domain/auth/api-keys.ts";
import { ApiKeyStore } from "../../src/bay/store/api-key-store.ts";
import { openDatabase } from "../../src/bay/store/database.ts";
import { createTestBay, pollUntil } from "../support/harness.ts";

describe("auth configuration", () => {
  test('BAY_API_KEY becomes a bootstrap key; the owner defaults to "default"', () => {
    const cfg = loadConfig({ BAY_API_KEY: "env-key-0123456789abcdef" }, undefined);
    expect(cfg.auth.mode).toBe("api_key");
    expect(cfg.auth.api_keys).toEqual([{ key: "env-key-0123456789abcdef", owner: "default" }]);
    const owned = loadConfig({ BAY_API_KEY: "env-key-0123456789abcdef", BAY_API_KEY_OWNER: "ops" }, undefined);
    expect(owned.auth.api_keys).toEqual([{ key: "env-key-0123456789abcdef", owner: "ops" }]);
  });

  test("a too short BAY_API_KEY (or a bad BAY_API_KEY_OWNER) is refused at start, naming the variable", () => {
    expect(() => loadConfig({ BAY_API_KEY: "short" }, undefined)).toThrow(ConfigError);
    expect(() => loadConfig({ BAY_API_KEY: "short" }, undefined)).toThrow(/BAY_API_KEY \(auth\.api_keys\.0\.key\): .*16/);
    expect(() => loadConfig({ BAY_API_KEY: "env-key-0123456789abcdef", BAY_API_KEY_OWNER: "no spaces" }, undefined)).toThrow(
      /BAY_API_KEY_OWNER \(auth\.api_keys\.0\.owner\)/,
    );
  });

  test("an empty BAY_API_KEY_OWNER is refused naming the variable and saying it is empty, with nothing about JWT prefixes", () => {
    const load = () => loadConfig({ BAY_API_KEY: "env-key-0123456789abcdef", BAY_API_KEY_OWNER: "" }, undefined);
    expect(load).toThrow(ConfigError);
    let problems: string[] = [];
    try {
      load();
    } catch (e) {
      problems = (e as ConfigError).problems;
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^BAY_API_KEY_OWNER: set but empty/);
    expect(problems[0]).toContain('"default"');
    expect(problems.join("\n")).not.toContain("owner_prefix");
    // An owner that is merely malformed gets the one message that says so, not a JWT-prefix one too.
    expect(() => loadConfig({ BAY_API_KEY: "env-key-0123456789abcdef", BAY_API_KEY_OWNER: "no spaces" }, undefined)).not.toThrow(
      /owner_prefix/,
    );
  });

  test("JWT settings and auth mode come from the environment", () => {
    const cfg = loadConfig(
      {
        BAY_AUTH_MODE: "anonymous",
        BAY_JWT_SECRET: "s".repeat(32),
        BAY_JWKS_URL: "https://idp.example/.well-known/jwks.json",
        BAY_JWT_ISSUER: "https://idp.example/",
        BAY_JWT_AUDIENCE: "bay",
      },
      undefined,
    );
    expect(cfg.auth.mode).toBe("anonymous");
    expect(cfg.auth.jwt).toEqual({
      secret: "s".repeat(32),
      jwks_url: "https://idp.example/.well-known/jwks.json",
      issuer: "https://idp.example/",
      audience: "bay",
      require_exp: true,
      owner_prefix: "jwt:",
    });
    expect(() => loadConfig({ BAY_AUTH_MODE: "open" }, undefined)).toThrow(ConfigError);
  });

  test("a bootstrap key's owner under a custom auth.jwt.owner_prefix is refused at start; the empty prefix shares on purpose", () => {
    const dir = mkdtempSync(join(tmpdir(), "bay-auth-config-"));
    try {
      const file = (prefix: string) => {
        const path = join(dir, `bay-${prefix.length}.yaml`);
        writeFileSync(
          path,
          `auth:\n  jwt:\n    owner_prefix: "${prefix}"\n  api_keys:\n    - { key: "k-0123456789abcdef", owner: "corp-alice" }\n`,
        );
        return path;
      };
      expect(() => loadConfig({}, file("corp-"))).toThrow(/owner_prefix "corp-"/);
      expect(loadConfig({}, file("")).auth.api_keys[0]!.owner).toBe("corp-alice");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a Bay built from that config accepts the bootstrap key and nothing else", async () => {
    const cfg = loadConfig({ BAY_API_KEY: "env-key-0123456789abcdef", BAY_API_KEY_OWNER: "ops" }, undefined);
    const t = await createTestBay({ config: { auth: cfg.auth } });
    try {
      const ok = await t.json("GET", "/v1/sandboxes", { headers: { authorization: "Bearer env-key-0123456789abcdef" } });
      expect(ok.status).toBe(200);
      const created = await t.json("POST", "/v1/sandboxes", { body: {}, headers: { authorization: "Bearer env-key-0123456789abcdef" } });
      const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT owner FROM sandboxes WHERE id = ?", args: [created.body.id] });
      expect(rs.rows[0]!.owner).toBe("ops");
      expect((await t.call("GET", "/v1/sandboxes", { headers: { authorization: "Bearer env-key-0123456789abcdeX" } })).status).toBe(401);
      // Bootstrap keys are not stored, so they do not show up in `bay keys list`.
      expect(await t.bay.deps.apiKeys.list()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  test("last_used_at is written at most once a minute per key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bay-keys-"));
    const db = await openDatabase({ url: `file:${join(dir, "bay.db")}` });
    try {
      let now = 1_000_000;
      // Records each write: verify() decides (and starts) the write before it returns.
      const touches: number[] = [];
      class RecordingStore extends ApiKeyStore {
        override touch(id: string, at: number) {
          touches.push(at);
          return super.touch(id, at);
        }
      }
      const svc = new ApiKeyService(new RecordingStore(db), [], () => now);
      const { key } = await svc.create("alice");
      const lastUsed = async () => (await svc.list("alice"))[0]!.lastUsedAt;
      // The write is fire-and-forget: poll for it, bounded.
      const settled = (want: number) => pollUntil(lastUsed, (v) => v === want, 5_000, `last_used_at = ${want}`);
      expect(await svc.verify(key)).toBe("alice");
      expect(touches).toEqual([1_000_000]);
      await settled(1_000_000);
      now += 30_000;
      await svc.verify(key);
      expect(touches).toEqual([1_000_000]);
      expect(await lastUsed()).toBe(1_000_000);
      now += 31_000;
      await svc.verify(key);
      expect(touches).toEqual([1_000_000, 1_061_000]);
      await settled(1_061_000);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
