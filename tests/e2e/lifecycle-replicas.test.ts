/**
 * Several Bay replicas on one libSQL database (same installation, same
 * instance_id; a file, and a real libSQL server): concurrent first calls spread
 * over both start exactly one container, reaper beats running on both at once
 * reclaim an idle session or expire a sandbox exactly once, and a call that ends
 * on one never lets a reaper take the session from a call still running on the
 * other. Coordination is only through the database.
 */
import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "../../src/bay/config.ts";
import { createLogger } from "../../src/bay/logger.ts";
import { api, startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { createTestBay, pollUntil, uniqueInstanceId, type TestBay } from "../support/harness.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { docker, py, requireShipImages, sh } from "./support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { startSqld } from "../support/sqld.ts";

setDefaultTimeout(120_000);

const shortIdle = configSchema.parse({ profiles: [{ id: "python-default", image: SHIP_IMAGE, idle_timeout: 2 }] }).profiles;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
beforeAll(() => requireShipImages());

const labelled = (instanceId: string, sandboxId: string) =>
  docker.listContainers({ all: true, filters: { label: [`bay.instance_id=${instanceId}`, `bay.sandbox_id=${sandboxId}`] } });

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "bay-replicas-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The database both replicas share: a file in `dir`, or a real libSQL server. */
type Shared = (dir: string) => Promise<{ dbPath: string } | { dbUrl: string }>;

function replicaTests(shared: Shared): void {
  test("10 concurrent first calls over both start one container; both reapers reclaim the idle session once", async () => {
    const dir = tempDir();
    const db = await shared(dir);
    const instanceId = uniqueInstanceId();
    const procs: BayProcess[] = [];
    cleanups.push(async () => {
      for (const p of procs) await p.kill("SIGTERM");
      await removeLabelled(docker, { "bay.instance_id": instanceId });
    });
    const config = { profiles: shortIdle, lifecycle: { reaper_interval: 0.5 } };
    // Started one after the other: the first applies the migrations.
    procs.push(await startBayProcess({ ...db, instanceId, dir, config }));
    procs.push(await startBayProcess({ ...db, instanceId, dir, config }));
    const [a, b] = procs as [BayProcess, BayProcess];

    const id = (await api(a.url, "POST", "/v1/sandboxes", {})).body.id as string;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => api((i % 2 ? b : a).url, "POST", `/v1/sandboxes/${id}/python/exec`, { code: `print(${i})` })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    for (const [i, r] of results.entries()) expect(r.body.output).toContain(String(i));
    expect(await labelled(instanceId, id)).toHaveLength(1);
    expect((await api(b.url, "GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");

    // Both reapers beat every 0.5 s over the same idle session.
    await pollUntil(
      async () => (await api(a.url, "GET", `/v1/sandboxes/${id}`)).body.status,
      (s) => s === "idle",
      30_000,
      "status idle",
    );
    await pollUntil(
      () => labelled(instanceId, id),
      (l) => l.length === 0,
      30_000,
      "container removed",
    );
    await Bun.sleep(1500); // a few more beats on both
    const stopped = [...a.logs, ...b.logs].filter((l) => l.msg === "session stopped" && l.sandbox_id === id);
    expect(stopped).toHaveLength(1);
    const problems = [...a.logs, ...b.logs].filter((l) => l.level === "error" || /step failed/.test(l.msg));
    expect(problems).toEqual([]);

    const again = await api(b.url, "POST", `/v1/sandboxes/${id}/python/exec`, { code: "print('back')" });
    expect(again.status).toBe(200);
    expect(await labelled(instanceId, id)).toHaveLength(1);
  });
}

describe("two Bay processes on one database file", () => replicaTests(async (dir) => ({ dbPath: join(dir, "bay.db") })));

describe("two Bay processes on one libSQL server (sqld)", () =>
  replicaTests(async () => {
    const sqld = await startSqld();
    cleanups.push(() => sqld.close());
    return { dbUrl: sqld.url };
  }));

describe("reaper beats on two replicas at the same instant", () => {
  async function pair(config: Record<string, unknown>) {
    const dir = tempDir();
    const dbPath = join(dir, "bay.db");
    const instanceId = uniqueInstanceId();
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger("info", (l) => lines.push(JSON.parse(l)));
    const a: TestBay = await createTestBay({ dbPath, instanceId, config, logger });
    const b: TestBay = await createTestBay({ dbPath, instanceId, config, logger });
    cleanups.push(async () => {
      await b.close();
      await a.close();
    });
    return { a, b, lines, instanceId };
  }

  test("an idle-expired session is reclaimed once", async () => {
    const { a, b, lines, instanceId } = await pair({ profiles: shortIdle });
    const id = (await a.json("POST", "/v1/sandboxes", { body: {} })).body.id as string;
    expect((await py(b, id, "open('/workspace/f','w').write('1')")).status).toBe(200);
    expect(await labelled(instanceId, id)).toHaveLength(1);
    await Bun.sleep(2200);

    const reports = await Promise.all([a.bay.reaper.runOnce(), b.bay.reaper.runOnce(), a.bay.reaper.runOnce()]);
    const [ra, rb] = reports;
    expect(ra.idleReclaimed + rb.idleReclaimed).toBe(1);
    expect(ra.errors + rb.errors).toBe(0);
    expect(lines.filter((l) => l.msg === "session stopped")).toHaveLength(1);
    expect(lines.filter((l) => l.level === "error" || l.level === "warn")).toEqual([]);
    expect(await labelled(instanceId, id)).toHaveLength(0);
    expect((await a.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("idle");
    const r = await py(a, id, "print(open('/workspace/f').read())");
    expect(r.body.output).toContain("1");
  });

  test("a long call on one replica keeps its session while a short call on the other ends and the idle deadline passes", async () => {
    const { a, b, lines, instanceId } = await pair({ profiles: shortIdle });
    const id = (await a.json("POST", "/v1/sandboxes", { body: {} })).body.id as string;
    expect((await py(a, id, "1")).status).toBe(200);
    // On B: a cell that runs past the 2 s idle timeout (its 30 s timeout covers it).
    const long = py(b, id, "import time; time.sleep(5); print('survived')");
    await Bun.sleep(500);
    // On A: a short call ends while B's still runs; its end resets the idle deadline to now + 2 s.
    expect((await sh(a, id, { command: "true" })).status).toBe(200);
    await Bun.sleep(2800);
    const reports = await Promise.all([a.bay.reaper.runOnce(), b.bay.reaper.runOnce()]);
    expect(reports.map((r) => r.idleReclaimed)).toEqual([0, 0]);
    const r = await long;
    expect(r.status).toBe(200);
    expect(r.body.output).toBe("survived\n");
    expect(lines.filter((l) => l.msg === "session stopped")).toEqual([]);
    expect(await labelled(instanceId, id)).toHaveLength(1);
    // Once both are over, the idle timeout applies from the last one's end.
    await Bun.sleep(2600);
    const after = await Promise.all([a.bay.reaper.runOnce(), b.bay.reaper.runOnce()]);
    expect(after[0]!.idleReclaimed + after[1]!.idleReclaimed).toBe(1);
  });

  test("a sandbox past its TTL is expired once", async () => {
    const { a, b, lines, instanceId } = await pair({});
    const id = (await a.json("POST", "/v1/sandboxes", { body: { ttl: 60 } })).body.id as string;
    expect((await py(a, id, "1")).status).toBe(200);
    // Move the TTL into the past rather than race a short one against a cold start.
    await a.bay.deps.stores.sandboxes.setExpiresAt(id, Date.now() - 1000);
    const [ra, rb] = await Promise.all([a.bay.reaper.runOnce(), b.bay.reaper.runOnce()]);
    expect(ra.expired + rb.expired).toBe(1);
    expect(ra.errors + rb.errors).toBe(0);
    expect(lines.filter((l) => l.msg === "sandbox expired")).toHaveLength(1);
    expect(await labelled(instanceId, id)).toHaveLength(0);
    expect((await b.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("expired");
  });
});
