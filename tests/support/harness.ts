/**
 * Test harness: a real Bay (real libSQL file database in a temp dir, the real
 * Docker driver unless a test passes another, e.g. the in-memory one) built per
 * test. Each harness has its own `instance_id`, so its containers and volumes are
 * labelled apart from every other test's, and `close()` removes exactly what it
 * created.
 */
import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBay, type Bay } from "../../src/bay/bootstrap.ts";
import { configSchema, defaultProfiles, shipImages, type BayConfig } from "../../src/bay/config.ts";
import type { Driver } from "../../src/bay/drivers/driver.ts";
import { silentLogger, type Logger } from "../../src/bay/logger.ts";
import { afterAnswersRan } from "../../src/bay/observability/after-answer.ts";
import { assertContractErrorResponse } from "./error-contract.ts";
import { SHIP_TAG } from "./images.ts";

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

export interface TestBay {
  bay: Bay;
  config: BayConfig;
  dir: string;
  /** app.request with JSON helpers; owner defaults to "alice" (anonymous mode, X-Owner). */
  call(method: string, path: string, opts?: { body?: unknown; headers?: Record<string, string>; owner?: string }): Promise<Response>;
  json<T = any>(
    method: string,
    path: string,
    opts?: { body?: unknown; headers?: Record<string, string>; owner?: string },
  ): Promise<{ status: number; body: T; res: Response }>;
  close(): Promise<void>;
}

export interface TestBayOptions {
  config?: DeepPartial<BayConfig> & Record<string, unknown>;
  logger?: Logger;
  /** Reuse a database file (e.g. to simulate a restart or a second replica). */
  dbPath?: string;
  /** Label value for this Bay's Docker objects; null = the database's own installation id. */
  instanceId?: string | null;
  /** A driver built by the test (default: Docker per the config): a DockerDriver with options the config has no key for, a MemoryDriver several Bays share. */
  driver?: Driver;
  /** The lifecycle's clock (default Date.now). */
  now?: () => number;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export const uniqueInstanceId = () => `test-${crypto.randomUUID().slice(0, 12)}`;

/** Builds a Bay for a test. Anonymous auth unless the config says otherwise. */
export async function createTestBay(opts: TestBayOptions = {}): Promise<TestBay> {
  const dir = mkdtempSync(join(tmpdir(), "bay-test-"));
  const dbPath = opts.dbPath ?? join(dir, "bay.db");
  const instanceId = opts.instanceId === null ? undefined : (opts.instanceId ?? uniqueInstanceId());
  const raw = merge(
    {
      database: { url: `file:${dbPath}` },
      auth: { mode: "anonymous" },
      driver: { ...(instanceId ? { instance_id: instanceId } : {}), ready_timeout: 30, helper_image: shipImages(SHIP_TAG).ship },
      profiles: defaultProfiles(SHIP_TAG),
    },
    (opts.config ?? {}) as Record<string, unknown>,
  );
  const config = configSchema.parse(raw);
  const bay = await buildBay(config, { logger: opts.logger ?? silentLogger, hostEnv: {}, driver: opts.driver, now: opts.now });
  const call: TestBay["call"] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (config.auth.mode === "anonymous" && !headers["x-owner"] && !headers.authorization) headers["x-owner"] = o.owner ?? "alice";
    let body: BodyInit | undefined;
    if (o.body !== undefined) {
      if (typeof o.body === "string" || o.body instanceof FormData || o.body instanceof Uint8Array) body = o.body as BodyInit;
      else {
        body = JSON.stringify(o.body);
        headers["content-type"] ??= "application/json";
      }
    }
    const res = await bay.app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) });
    // Its access line and metrics are written once the answer is on its way: read after them.
    await afterAnswersRan();
    await assertContractErrorResponse(res);
    return res;
  };
  return {
    bay,
    config,
    dir,
    call,
    async json(method, path, o) {
      const res = await call(method, path, o);
      const text = await res.clone().text();
      let body: any = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      return { status: res.status, body, res };
    },
    async close() {
      // A reaper beat may still be removing a container, a warm-pool member still starting: let them finish first.
      await bay.reaper.stop();
      await bay.pool.stop();
      await removeInstanceResources(bay, bay.instanceId);
      await bay.close();
      if (!opts.dbPath) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A maker of test Bays for a file's tests, each closed after the test that made it. */
export function testBays(): (opts?: TestBayOptions) => Promise<TestBay> {
  const open: TestBay[] = [];
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
  });
  return async (opts = {}) => {
    const t = await createTestBay(opts);
    open.push(t);
    return t;
  };
}

/** Removes every container and volume labelled with this instance id. */
export async function removeInstanceResources(bay: Bay, instanceId: string): Promise<void> {
  const driver = bay.driver;
  for (const c of await driver.listContainers({ instance_id: instanceId }).catch(() => [])) {
    await driver.destroyContainer(c.id).catch(() => {});
  }
  for (const v of await driver.listVolumes({ instance_id: instanceId }).catch(() => [])) {
    // A container removed just before may still hold the volume for a moment.
    for (let attempt = 0; attempt < 20; attempt++) {
      const removed = await driver.removeVolume(v.name).then(
        () => true,
        () => false,
      );
      if (removed) break;
      await Bun.sleep(100);
    }
  }
}

/**
 * Reads until `done(value)` holds or `ms` pass (bounded polling, no fixed sleep);
 * returns the value, or throws naming `what` and the last value read.
 */
export async function pollUntil<T>(read: () => Promise<T> | T, done: (v: T) => boolean, ms = 5_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms (last value: ${JSON.stringify(value)})`);
    await Bun.sleep(25);
  }
}
