/** The warm pool's configuration: per-profile `warm_pool`, BAY_WARM_POOL, and their errors (each names what is wrong). */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig, parseWarmPoolEnv } from "../../src/bay/config.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bay-pool-config-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

const sizes = (env: Record<string, string>, file?: string) =>
  Object.fromEntries(loadConfig(env, file).profiles.map((p) => [p.id, p.warm_pool.size]));

describe("warm_pool", () => {
  test("off by default: size 0 for every profile, an hour's max age, two starts at once", () => {
    const c = loadConfig({});
    for (const p of c.profiles) expect(p.warm_pool).toEqual({ size: 0, max_age_seconds: 3600 });
    expect(c.lifecycle.warm_pool_concurrency).toBe(2);
  });

  test("BAY_WARM_POOL sets sizes by profile id; unnamed profiles keep theirs", () => {
    const none = { "python-default": 0, "python-data": 0, "python-gvisor": 0 };
    expect(sizes({ BAY_WARM_POOL: "python-default:4,python-data:1" })).toEqual({ ...none, "python-default": 4, "python-data": 1 });
    expect(sizes({ BAY_WARM_POOL: " python-data : 2 " })).toEqual({ ...none, "python-data": 2 });
    expect(sizes({ BAY_WARM_POOL: "" })).toEqual(none);
  });

  test("BAY_WARM_POOL wins over the file's size and keeps the file's max age", () => {
    const file = join(dir, "bay.yaml");
    writeFileSync(
      file,
      ["profiles:", "  - id: small", "    image: bay-ship:latest", "    warm_pool: { size: 3, max_age_seconds: 600 }"].join("\n"),
    );
    expect(loadConfig({}, file).profiles[0]!.warm_pool).toEqual({ size: 3, max_age_seconds: 600 });
    expect(loadConfig({ BAY_WARM_POOL: "small:1" }, file).profiles[0]!.warm_pool).toEqual({ size: 1, max_age_seconds: 600 });
  });

  test.each([
    ["python-default", 'BAY_WARM_POOL: "python-default": expected profile:size, e.g. python-default:4'],
    [":4", 'BAY_WARM_POOL: ":4": expected profile:size, e.g. python-default:4'],
    ["python-default:four", 'BAY_WARM_POOL: "python-default:four": size must be a whole number from 0 to 1000'],
    ["python-default:-1", 'BAY_WARM_POOL: "python-default:-1": size must be a whole number from 0 to 1000'],
    ["python-default:1.5", 'BAY_WARM_POOL: "python-default:1.5": size must be a whole number from 0 to 1000'],
    ["python-default:", 'BAY_WARM_POOL: "python-default:": size must be a whole number from 0 to 1000'],
    ["python-default:5000", 'BAY_WARM_POOL: "python-default:5000": size must be a whole number from 0 to 1000'],
    [
      "pyhton-default:2",
      'BAY_WARM_POOL: "pyhton-default:2": unknown profile "pyhton-default" (known: python-default, python-data, python-gvisor)',
    ],
    ["python-default:1,python-default:2", 'BAY_WARM_POOL: "python-default:2": profile "python-default" is named twice'],
    [
      "python-default:1,,python-data:1",
      'BAY_WARM_POOL: empty entry in "python-default:1,,python-data:1" (expected profile:size, comma-separated)',
    ],
    ["python-default:2,,", 'BAY_WARM_POOL: empty entry in "python-default:2,," (expected profile:size, comma-separated)'],
  ])("BAY_WARM_POOL=%p is refused: %s", (value, message) => {
    expect(problemsOf(() => loadConfig({ BAY_WARM_POOL: value }))).toEqual([message]);
  });

  test("every bad entry is reported at once", () => {
    const { sizes: parsed, problems } = parseWarmPoolEnv("a:1,python-default:x,python-data:2", ["python-default", "python-data"]);
    expect(problems).toHaveLength(2);
    expect(parsed.get("python-data")).toBe(2);
  });

  test("the pools must leave owners room under limits.max_live_sessions", () => {
    expect(problemsOf(() => loadConfig({ BAY_WARM_POOL: "python-default:150,python-data:50" }))).toEqual([
      "BAY_WARM_POOL: the warm pools hold 200 sessions, leaving no room under limits.max_live_sessions (200)",
    ]);
    const file = join(dir, "bay.yaml");
    writeFileSync(
      file,
      ["profiles:", "  - id: small", "    image: i", "    warm_pool: { size: 5 }", "limits: { max_live_sessions: 5 }"].join("\n"),
    );
    expect(problemsOf(() => loadConfig({}, file))).toEqual([
      "profiles: the warm pools hold 5 sessions, leaving no room under limits.max_live_sessions (5)",
    ]);
  });

  test("a bad size or max age in the file is a schema problem naming its path", () => {
    const file = join(dir, "bay.yaml");
    writeFileSync(
      file,
      ["profiles:", "  - id: small", "    image: i", "    warm_pool: { size: -1, max_age_seconds: 1, extra: 1 }"].join("\n"),
    );
    const problems = problemsOf(() => loadConfig({}, file));
    expect(problems.some((p) => p.startsWith("profiles.0.warm_pool.size:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("profiles.0.warm_pool.max_age_seconds:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("profiles.0.warm_pool:") && p.includes("extra"))).toBe(true);
  });
});
