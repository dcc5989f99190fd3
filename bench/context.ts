/**
 * What every benchmark gets: one Bay subprocess on loopback (API-key auth, the
 * production path, with a key stored in its database; access log on at info,
 * stderr to a file; the rate limit out of the way), a Docker client, and small
 * helpers. Two profiles on the same image: `python-default` keeps a warm pool,
 * `python-cold` none, so cold benches never hit the pool; and `python-gvisor`
 * (the same image under runsc, no pool) for the runtime comparison.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { ApiKeyService } from "../src/bay/domain/auth/api-keys.ts";
import { openDatabase } from "../src/bay/store/database.ts";
import { LocalDatabase } from "../src/bay/store/local-database.ts";
import { createStores, type Stores } from "../src/bay/store/index.ts";
import { type BayProcess, spawnBay } from "../tests/e2e/support/e2e.ts";
import { SHIP_IMAGE } from "../tests/support/images.ts";
import { shipRequestTarget } from "../src/bay/runtime/endpoint.ts";

export interface BenchContext {
  bay: BayProcess;
  docker: Docker;
  /** Label on every container a benchmark makes outside Bay, for cleanup. */
  benchLabel: Record<string, string>;
  runs: number;
  /** Authorization for every request (a stored API key). */
  auth: Record<string, string>;
  /** Bay's own database, for what a benchmark must read behind Bay's back (a session's secret). */
  stores: Stores;
  /** Where Bay's log goes. */
  logFile: string;
  close(): Promise<void>;
}

export const POOL_PROFILE = "python-default";
export const COLD_PROFILE = "python-cold";
export const GVISOR_PROFILE = "python-gvisor";

/**
 * Starts the benchmark Bay with a warm pool of `poolSize` on POOL_PROFILE.
 * `baselineRoot`: a Bay from another checkout instead (a before / after), with
 * the same profiles but no warm pool (an older build may not know the setting);
 * its database is read without migrating it.
 */
export async function startBench(
  docker: Docker,
  benchLabel: Record<string, string>,
  runs: number,
  poolSize: number,
  env: Record<string, string> = {},
  baselineRoot?: string,
): Promise<BenchContext> {
  const dir = mkdtempSync(join(tmpdir(), "bay-bench-"));
  const config = join(dir, "bay.yaml");
  const profile = (id: string, size: number) =>
    baselineRoot ? { id, image: SHIP_IMAGE } : { id, image: SHIP_IMAGE, warm_pool: { size, max_age_seconds: 3600 } };
  await Bun.write(
    config,
    JSON.stringify({
      profiles: [profile(POOL_PROFILE, poolSize), profile(COLD_PROFILE, 0), { ...profile(GVISOR_PROFILE, 0), runtime: "runsc" }],
      limits: { rate_limit_per_minute: 1_000_000_000, max_sandboxes_per_owner: 200, max_workspaces_per_owner: 400 },
      ...(baselineRoot ? {} : { lifecycle: { warm_pool_concurrency: 2 } }),
    }),
  );
  const logFile = join(dir, "bay.log");
  const bay = await spawnBay(
    { BAY_CONFIG: config, BAY_AUTH_MODE: "api_key", BAY_LOG_LEVEL: "info", ...env },
    { stderrFile: logFile, ...(baselineRoot ? { root: baselineRoot } : {}) },
  );
  // The Bay has migrated its database; an older build's schema is left as it is.
  const db = baselineRoot ? new LocalDatabase(bay.dbPath, 5000) : await openDatabase({ url: `file:${bay.dbPath}` });
  const stores = createStores(db);
  const { key } = await new ApiKeyService(stores.apiKeys).create("bench", "bench");
  return {
    bay,
    docker,
    benchLabel,
    runs,
    auth: { authorization: `Bearer ${key}` },
    stores,
    logFile,
    async close() {
      await bay.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function bayJson<T = any>(
  ctx: BenchContext,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${ctx.bay.url}${path}`, {
    method,
    headers: { ...ctx.auth, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/** Creates a sandbox; its id and the status it was created in (`ready`: a warm-pool hit). */
export async function createSandbox(ctx: BenchContext, profile = COLD_PROFILE): Promise<{ id: string; status: string }> {
  const r = await bayJson<{ id: string; status: string }>(ctx, "POST", "/v1/sandboxes", { profile });
  if (r.status !== 201) throw new Error(`create sandbox: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function deleteSandbox(ctx: BenchContext, id: string): Promise<void> {
  await fetch(`${ctx.bay.url}/v1/sandboxes/${id}`, { method: "DELETE", headers: ctx.auth }).catch(() => {});
}

/** POST …/python/exec `code` through Bay; checks the answer. */
export async function bayExec(ctx: BenchContext, id: string, code = "1+1"): Promise<void> {
  const r = await fetch(`${ctx.bay.url}/v1/sandboxes/${id}/python/exec`, {
    method: "POST",
    headers: { ...ctx.auth, "content-type": "application/json" },
    body: JSON.stringify({ code }),
  });
  expectTwo((await r.json()) as object, "bay exec");
}

/** Where a ready sandbox's Ship answers, with the secret it requires: read from Bay's database. */
export async function shipOf(ctx: Pick<BenchContext, "stores">, id: string): Promise<{ endpoint: string; secret: string }> {
  const sb = await ctx.stores.sandboxes.get(id);
  if (!sb?.session?.endpoint || !sb.session.secret) throw new Error(`sandbox ${id} has no ready session`);
  return { endpoint: sb.session.endpoint, secret: sb.session.secret };
}

/** POST /ipython/exec straight to a Ship (through its published port, or its socket in unix_socket mode). */
export async function directExec(ship: { endpoint: string; secret: string }, code = "1+1"): Promise<void> {
  const { url, unix } = shipRequestTarget(ship.endpoint, "/ipython/exec");
  const r = await fetch(url, {
    ...(unix ? { unix } : {}),
    method: "POST",
    headers: { authorization: `Bearer ${ship.secret}`, "content-type": "application/json" },
    body: JSON.stringify({ code }),
  });
  expectTwo((await r.json()) as object, "direct exec");
}

/** The answer of `1+1`: its last line is 2 (after 1000 cells IPython may warn about its output cache first). */
export function expectTwo(body: { success?: boolean; output?: string }, where: string): void {
  if (!body.success || `${body.output}`.trim().split("\n").pop() !== "2") {
    throw new Error(`${where}: unexpected exec result ${JSON.stringify(body)}`);
  }
}

/** The machine's 1-minute load average, for the report (the machine is shared). */
export async function loadAverage(): Promise<number> {
  const text = await Bun.file("/proc/loadavg").text();
  return Number(text.split(" ")[0]);
}
