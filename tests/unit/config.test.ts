/** loadConfig: defaults, YAML file + environment (env wins), one ConfigError listing every problem. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, configSchema, loadConfig } from "../../src/bay/config.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bay-config-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function yamlFile(text: string): string {
  const p = join(dir, "bay.yaml");
  writeFileSync(p, text);
  return p;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

test("a YAML syntax error says where, never the line itself (it may hold a key)", () => {
  const problems = problemsOf(() => loadConfig({}, yamlFile("auth:\n  api_keys:\n    - key: SECRET-VALUE-0123456789: x\n")));
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatch(/bay\.yaml: invalid YAML at line 3, column \d+/);
  expect(problems.join("\n")).not.toContain("SECRET-VALUE");
});

describe("defaults", () => {
  test("an empty environment gives a complete, safe configuration", () => {
    const c = loadConfig({});
    expect(c.server).toEqual({
      host: "127.0.0.1",
      port: 8000,
      version: "0.1.0",
      allowed_hosts: ["localhost", "127.0.0.1", "[::1]"],
      cors_origins: [],
      max_header_bytes: 64 * 1024,
      idle_timeout: 30,
    });
    expect(c.auth.mode).toBe("api_key");
    expect(c.driver.connect_mode).toBe("host_port");
    expect(c.driver.instance_id).toBeUndefined(); // then the database's installation id
    expect(c.limits.max_body_bytes).toBe(2 * 1024 * 1024);
    expect(c.limits.max_sandboxes_per_owner).toBe(50);
    expect(c.idempotency.ttl_seconds).toBe(86400);
    expect(c.profiles.map((p) => p.id)).toEqual(["python-default", "python-data", "python-gvisor"]);
    const p = c.profiles[0]!;
    expect(p.runtime_port).toBe(8123);
    expect(p.capabilities).toEqual(["python", "shell", "filesystem"]);
    expect(p.read_only_rootfs).toBe(true);
  });

  test("BAY_CONFIG names the file when no path is given", () => {
    const f = yamlFile("server:\n  port: 9001\n");
    expect(loadConfig({ BAY_CONFIG: f }).server.port).toBe(9001);
  });
});

describe("file and environment", () => {
  test("YAML values apply; environment overrides win over the file", () => {
    const f = yamlFile(
      [
        "server:",
        "  host: 0.0.0.0",
        "  port: 9000",
        "database:",
        "  url: file:/tmp/from-file.db",
        "auth:",
        "  mode: anonymous",
        "  default_owner: file-owner",
        "limits:",
        "  max_body_bytes: 4096",
      ].join("\n"),
    );
    const c = loadConfig({ BAY_PORT: "9100", BAY_DB_URL: ":memory:", BAY_AUTH_MODE: "api_key" }, f);
    expect(c.server.host).toBe("0.0.0.0"); // from the file
    expect(c.server.port).toBe(9100); // env wins
    expect(c.database.url).toBe(":memory:");
    expect(c.auth.mode).toBe("api_key");
    expect(c.auth.default_owner).toBe("file-owner");
    expect(c.limits.max_body_bytes).toBe(4096);
    expect(c.limits.max_upload_bytes).toBe(1024 * 1024 * 1024); // untouched default
  });

  test("an empty env value does not override", () => {
    const f = yamlFile("server:\n  port: 9000\n");
    expect(loadConfig({ BAY_PORT: "" }, f).server.port).toBe(9000);
  });

  test("BAY_API_KEY adds a bootstrap key next to the file's", () => {
    const f = yamlFile("auth:\n  api_keys:\n    - key: file-key-0123456789\n      owner: ops\n");
    const c = loadConfig({ BAY_API_KEY: "env-key-0123456789ab", BAY_API_KEY_OWNER: "ci" }, f);
    expect(c.auth.api_keys).toEqual([
      { key: "file-key-0123456789", owner: "ops" },
      { key: "env-key-0123456789ab", owner: "ci" },
    ]);
  });

  test("profiles from the file replace the defaults and get their own defaults", () => {
    const f = yamlFile("profiles:\n  - id: tiny\n    image: tiny:1\n    capabilities: [shell]\n");
    const c = loadConfig({}, f);
    expect(c.profiles).toHaveLength(1);
    expect(c.profiles[0]).toMatchObject({ id: "tiny", image: "tiny:1", capabilities: ["shell"], cpus: 1, memory_mb: 1024 });
  });
});

describe("ConfigError", () => {
  test("a WebSocket database URL is refused: its calls could not have a deadline", () => {
    for (const url of ["ws://127.0.0.1:8080", "WSS://db.example"]) {
      const text = problemsOf(() => loadConfig({ BAY_DB_URL: url })).join("\n");
      expect(text).toContain("database.url");
      expect(text).toContain("libsql://");
    }
    for (const url of ["libsql://db.example", "http://127.0.0.1:8080", "https://db.example", "file:x.db", ":memory:"]) {
      expect(loadConfig({ BAY_DB_URL: url }).database.url).toBe(url);
    }
  });

  test("one error lists several problems at once", () => {
    const f = yamlFile(["server:", "  port: 70000", "auth:", "  mode: sometimes", "unknown_section: 1"].join("\n"));
    const problems = problemsOf(() => loadConfig({ BAY_READY_TIMEOUT: "soon", BAY_CONNECT_MODE: "teleport" }, f));
    const text = problems.join("\n");
    expect(text).toContain("BAY_READY_TIMEOUT");
    expect(text).toContain("server.port");
    expect(text).toContain("auth.mode");
    expect(text).toContain("driver.connect_mode");
    expect(problems.length).toBeGreaterThanOrEqual(5);
  });

  test("the message names every problem", () => {
    const f = yamlFile("server:\n  port: -1\nlimits:\n  max_body_bytes: 0\n");
    try {
      loadConfig({}, f);
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as Error).message).toContain("server.port");
      expect((e as Error).message).toContain("limits.max_body_bytes");
    }
  });

  test("a file that does not exist or is not YAML is a ConfigError", () => {
    expect(problemsOf(() => loadConfig({}, join(dir, "missing.yaml")))[0]).toContain("missing.yaml");
    expect(problemsOf(() => loadConfig({}, yamlFile("server: [unclosed\n"))).length).toBe(1);
    expect(problemsOf(() => loadConfig({}, yamlFile("- a\n- b\n")))[0]).toContain("mapping");
  });

  test("duplicate profile ids are refused", () => {
    const f = yamlFile("profiles:\n  - id: p1\n    image: a\n  - id: p1\n    image: b\n  - id: p2\n    image: c\n");
    const problems = problemsOf(() => loadConfig({}, f));
    expect(problems.join("\n")).toContain("duplicate id p1");
    expect(problems.join("\n")).not.toContain("p2");
  });

  test("duplicate profile ids are listed together with the other problems", () => {
    const f = yamlFile("server:\n  port: 70000\nprofiles:\n  - id: p1\n    image: a\n  - id: p1\n    image: b\n");
    const text = problemsOf(() => loadConfig({}, f)).join("\n");
    expect(text).toContain("server.port");
    expect(text).toContain("profiles: duplicate id p1");
  });

  test("an invalid profile id and an empty profile list are refused", () => {
    expect(problemsOf(() => loadConfig({}, yamlFile("profiles:\n  - id: Bad Id\n    image: a\n"))).join()).toContain("profiles.0.id");
    expect(problemsOf(() => loadConfig({}, yamlFile("profiles: []\n"))).join()).toContain("profiles");
  });
});

describe("profile network and runtime", () => {
  const profilesFile = (profiles: string) => yamlFile(`profiles:\n${profiles}`);

  test("the default profiles are isolated (network egress); python-gvisor runs under runsc", () => {
    const c = loadConfig({});
    expect(c.profiles.map((p) => [p.id, p.network, p.runtime])).toEqual([
      ["python-default", "egress", undefined],
      ["python-data", "egress", undefined],
      ["python-gvisor", "egress", "runsc"],
    ]);
  });

  test("egress, none and an operator's Docker network are the choices", () => {
    const c = loadConfig(
      {},
      profilesFile(
        [
          "  - { id: a, image: i }",
          "  - { id: b, image: i, network: none }",
          "  - { id: c, image: i, network: { docker_network: my-net.1 } }",
        ].join("\n"),
      ),
    );
    expect(c.profiles.map((p) => p.network)).toEqual(["egress", "none", { docker_network: "my-net.1" }]);
  });

  test("a bare network name is refused with the spelling to use instead", () => {
    const problems = problemsOf(() => loadConfig({}, profilesFile("  - { id: a, image: i, network: my-net }")));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("profiles.0.network");
    expect(problems[0]).toContain("{docker_network: my-net}");
  });

  test("host, none and Bay's own managed networks cannot be a profile's docker_network", () => {
    const problems = problemsOf(() =>
      loadConfig(
        {},
        profilesFile(
          [
            "  - { id: a, image: i, network: { docker_network: host } }",
            "  - { id: b, image: i, network: { docker_network: none } }",
            "  - { id: c, image: i, network: { docker_network: bay-egress-restricted } }",
            "  - { id: d, image: i, network: { docker_network: 'bad name' } }",
          ].join("\n"),
        ),
      ),
    );
    expect(problems).toHaveLength(4);
    expect(problems[0]).toContain("host's network stack");
    expect(problems[1]).toContain("write network: none");
    expect(problems[2]).toContain("Bay's own");
    expect(problems[3]).toContain("profiles.3.network.docker_network");
  });

  test("block_private_egress: true is still accepted (it is the default now) and leaves nothing behind", () => {
    const c = loadConfig(
      {},
      profilesFile(
        "  - { id: a, image: i, block_private_egress: true }\n  - { id: b, image: i, network: none, block_private_egress: true }",
      ),
    );
    expect(c.profiles.map((p) => p.network)).toEqual(["egress", "none"]);
    expect(c.profiles[0]).not.toHaveProperty("block_private_egress");
  });

  test("block_private_egress: false, or with a docker_network, is refused saying what to write", () => {
    const problems = problemsOf(() =>
      loadConfig(
        {},
        profilesFile(
          [
            "  - { id: a, image: i, block_private_egress: false }",
            "  - { id: b, image: i, network: { docker_network: n }, block_private_egress: true }",
          ].join("\n"),
        ),
      ),
    );
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain("profiles.0.block_private_egress");
    expect(problems[0]).toContain("{docker_network: bridge}");
    expect(problems[1]).toContain("profiles.1.block_private_egress");
    expect(problems[1]).toContain("installs no rules");
  });

  test("a runtime name with odd characters is refused", () => {
    const problems = problemsOf(() => loadConfig({}, profilesFile("  - { id: a, image: i, runtime: 'runsc --debug' }")));
    expect(problems[0]).toContain("profiles.0.runtime");
  });
});

test("a profile may not set the variables that wire Ship or would make it load other code (BUN_OPTIONS, BUN_BE_BUN, SHIP_SOCKET, …)", () => {
  for (const name of ["BUN_OPTIONS", "BUN_BE_BUN", "SHIP_SOCKET", "SHIP_CREDENTIALS", "SHIP_MAX_CONTEXTS", "SHIP_MAX_UPLOAD_BYTES"]) {
    const r = configSchema.safeParse({ profiles: [{ id: "p", image: "img", env: { [name]: "x" } }] });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain(`${name} cannot be set by a profile`);
  }
  // Ship's other settings stay the operator's.
  expect(configSchema.safeParse({ profiles: [{ id: "p", image: "img", env: { SHIP_MAX_OUTPUT_BYTES: "1024", TZ: "UTC" } }] }).success).toBe(
    true,
  );
});

test("the E2B prefix may not sit under one of Bay's own first segments (it would take /v1's auth and rate limit twice)", () => {
  for (const prefix of ["/v1", "/V1", "/v1/e2b", "/Mcp/x", "/mcp/x", "/docs/e2b", "/metrics/a/b", "/health/e2b", "/files/e2b"]) {
    expect(() => loadConfig({ BAY_E2B_PREFIX: prefix })).toThrow(/e2b\.prefix.*clashes with a Bay route/s);
  }
  for (const prefix of ["/e2b", "/compat/e2b", "/v2", "/v1e2b", "/e2b/v1"])
    expect(loadConfig({ BAY_E2B_PREFIX: prefix }).e2b.prefix).toBe(prefix);
});

test("e2b.run_code_timeout: a day by default, BAY_E2B_RUN_CODE_TIMEOUT sets it, and it is whole seconds from 1 to a day", () => {
  expect(loadConfig({}).e2b.run_code_timeout).toBe(86_400);
  expect(loadConfig({ BAY_E2B_RUN_CODE_TIMEOUT: "2" }).e2b.run_code_timeout).toBe(2);
  for (const bad of ["0", "86401", "1.5", "soon"]) {
    expect(() => loadConfig({ BAY_E2B_RUN_CODE_TIMEOUT: bad })).toThrow(/run_code_timeout|BAY_E2B_RUN_CODE_TIMEOUT/);
  }
});

test("metrics history: sampled every 5 s and kept an hour by default; BAY_METRICS_* set them; bad values are clear errors", () => {
  expect(loadConfig({}).metrics).toMatchObject({ sample_interval: 5, history: 3600 });
  expect(loadConfig({ BAY_METRICS_SAMPLE_INTERVAL: "0" }).metrics.sample_interval).toBe(0);
  expect(loadConfig({ BAY_METRICS_SAMPLE_INTERVAL: "1", BAY_METRICS_HISTORY: "120" }).metrics).toMatchObject({
    sample_interval: 1,
    history: 120,
  });
  for (const bad of ["-1", "0.5", "3601", "soon"]) {
    expect(() => loadConfig({ BAY_METRICS_SAMPLE_INTERVAL: bad })).toThrow(/sample_interval|BAY_METRICS_SAMPLE_INTERVAL/);
  }
  for (const bad of ["59", "604801", "90.5"]) {
    expect(() => loadConfig({ BAY_METRICS_HISTORY: bad })).toThrow(/history|BAY_METRICS_HISTORY/);
  }
  // Fewer than two intervals kept would delete each sample as it is written.
  expect(() => loadConfig({ BAY_METRICS_SAMPLE_INTERVAL: "60", BAY_METRICS_HISTORY: "100" })).toThrow(
    /at least two metrics\.sample_interval/,
  );
});
