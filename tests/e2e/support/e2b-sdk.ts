/**
 * A real Bay on Docker for the official E2B SDKs, configured only through
 * E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY, with a second owner's key minted
 * in E2B's form by the CLI. The exported bindings are live (set by useE2bBay).
 */
import { afterAll, beforeAll, expect } from "bun:test";
import { Sandbox } from "e2b";
import { join } from "node:path";
import { within } from "../../support/within.ts";
import { type BayProcess, requireShipImages, SHIP_DATA_IMAGE, SHIP_IMAGE, spawnBay } from "./e2e.ts";

const ROOT = join(import.meta.dir, "../../..");
export const ALICE_KEY = `e2b_${"a1".repeat(20)}`;
export let bay: BayProcess;
export let malloryKey: string;
export let api: string;

/** Sandboxes a test made, killed after the file. */
export const created: string[] = [];
export async function newSandbox(template?: string): Promise<Sandbox> {
  const sb = await within(60_000, "Sandbox.create", template ? Sandbox.create(template) : Sandbox.create());
  created.push(sb.sandboxId);
  return sb;
}

/** A Bay for the calling test file (its beforeAll and afterAll), the E2B SDKs pointed at it. */
export function useE2bBay(): void {
  beforeAll(async () => {
    await requireShipImages([SHIP_IMAGE, SHIP_DATA_IMAGE]);
    // Metrics sampled every second, so getMetrics' history fills within a test.
    bay = await spawnBay({
      BAY_AUTH_MODE: "api_key",
      BAY_API_KEY: ALICE_KEY,
      BAY_API_KEY_OWNER: "alice",
      BAY_METRICS_SAMPLE_INTERVAL: "1",
    });
    // A second owner's key, minted in E2B's form by the CLI on the same database.
    const cli = Bun.spawnSync(["bun", "run", "src/bay/cli.ts", "keys", "create", "--owner", "mallory", "--e2b"], {
      cwd: ROOT,
      env: { ...process.env, BAY_DB_URL: `file:${bay.dbPath}` },
    });
    malloryKey = /key:\s+(\S+)/.exec(cli.stdout.toString())?.[1] ?? "";
    expect(malloryKey).toMatch(/^e2b_[0-9a-f]{40}$/);
    api = `${bay.url}/e2b`;
    process.env.E2B_API_URL = api;
    process.env.E2B_SANDBOX_URL = api;
    process.env.E2B_API_KEY = ALICE_KEY;
  });

  afterAll(async () => {
    for (const id of created) await Sandbox.kill(id).catch(() => {});
    await bay?.close();
  });
}
