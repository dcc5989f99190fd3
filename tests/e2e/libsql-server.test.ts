/**
 * Bay on a real libSQL server (sqld), as several replicas run it: a sandbox's whole
 * life across a Bay killed with -9, and what a client sees when the server goes away,
 * stops answering, and comes back: 503 `database_unavailable` with a reason and
 * Retry-After (never a 500 or a hang), nothing half created, and everything as it
 * was once the server is back, without restarting Bay.
 */
import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { uniqueInstanceId } from "../support/harness.ts";
import { startSqld, type Sqld } from "../support/sqld.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { docker, requireShipImages } from "./support/e2e.ts";

setDefaultTimeout(120_000);
beforeAll(() => requireShipImages());

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

interface Setup {
  sqld: Sqld;
  instanceId: string;
  dir: string;
  start(config?: Record<string, unknown>): Promise<BayProcess>;
}

async function setup(): Promise<Setup> {
  const sqld = await startSqld();
  const dir = mkdtempSync(join(tmpdir(), "bay-libsql-"));
  const instanceId = uniqueInstanceId();
  const procs: BayProcess[] = [];
  cleanups.push(async () => {
    for (const p of procs) await p.kill("SIGKILL");
    sqld.resume();
    await sqld.close();
    await removeLabelled(docker, { "bay.instance_id": instanceId });
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    sqld,
    instanceId,
    dir,
    async start(config = {}) {
      const p = await startBayProcess({ dbUrl: sqld.url, instanceId, dir, config });
      procs.push(p);
      return p;
    },
  };
}

/** A request as owner alice, with the headers a test needs and a bound on how long it may hang. */
async function call(bay: BayProcess, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(bay.url + path, {
    method,
    headers: { "x-owner": "alice", ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const containers = (instanceId: string) => docker.listContainers({ all: true, filters: { label: [`bay.instance_id=${instanceId}`] } });
const volumes = async (instanceId: string) =>
  (await docker.listVolumes({ filters: { label: [`bay.instance_id=${instanceId}`] } })).Volumes ?? [];

function expectUnavailable(r: { status: number; headers: Headers; body: any }, reason: string): void {
  expect(r.status).toBe(503);
  expect(r.body.error.code).toBe("database_unavailable");
  expect(r.body.error.details).toEqual({ reason });
  expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(r.headers.get("x-request-id")).toBe(r.body.error.request_id);
}

describe("Bay on a libSQL server", () => {
  test("a sandbox's life: idempotent create, exec, files, stop; Bay killed -9; the next Bay carries on", async () => {
    const s = await setup();
    const a = await s.start();
    const created = await call(a, "POST", "/v1/sandboxes", {}, { "idempotency-key": "libsql-life" });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const replay = await call(a, "POST", "/v1/sandboxes", {}, { "idempotency-key": "libsql-life" });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.id).toBe(id);

    const exec = await call(a, "POST", `/v1/sandboxes/${id}/python/exec`, { code: "x = 6 * 7\nx" });
    expect(exec.body.output).toBe("42\n");
    expect((await call(a, "PUT", `/v1/sandboxes/${id}/filesystem/files`, { path: "kept.txt", content: "on sqld" })).status).toBe(200);
    expect((await call(a, "POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
    await a.kill("SIGKILL");

    const b = await s.start();
    expect((await call(b, "GET", `/v1/sandboxes/${id}`)).body.status).toBe("idle");
    const read = await call(b, "POST", `/v1/sandboxes/${id}/python/exec`, { code: "open('/workspace/kept.txt').read()" });
    expect(read.body.output).toBe("'on sqld'\n");
    expect((await call(b, "GET", "/v1/sandboxes")).body.items.map((x: { id: string }) => x.id)).toEqual([id]);
    expect((await call(b, "DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(await containers(s.instanceId)).toHaveLength(0);
    expect(await volumes(s.instanceId)).toHaveLength(0);
  });

  test("the server goes away: 503 database_unavailable (unreachable), nothing half created; back: as it was", async () => {
    const s = await setup();
    const bay = await s.start();
    const id = (await call(bay, "POST", "/v1/sandboxes", {})).body.id as string;
    expect((await call(bay, "POST", `/v1/sandboxes/${id}/python/exec`, { code: "1+1" })).body.output).toBe("2\n");
    const before = { containers: (await containers(s.instanceId)).length, volumes: (await volumes(s.instanceId)).length };

    await s.sqld.kill();
    expectUnavailable(await call(bay, "POST", "/v1/sandboxes", {}), "unreachable");
    expectUnavailable(await call(bay, "POST", "/v1/sandboxes", {}, { "idempotency-key": "during-outage" }), "unreachable");
    expectUnavailable(await call(bay, "GET", "/v1/sandboxes"), "unreachable");
    expectUnavailable(await call(bay, "POST", "/v1/workspaces", {}), "unreachable");
    const health = await call(bay, "GET", "/health");
    expect(health.body.status).toBe("degraded");
    expect(health.body.database).toEqual({ ok: false, error: "unreachable" });
    // Nothing was made for the refused creates.
    expect((await containers(s.instanceId)).length).toBe(before.containers);
    expect((await volumes(s.instanceId)).length).toBe(before.volumes);

    await s.sqld.restart();
    expect((await call(bay, "GET", "/health")).body.status).toBe("healthy");
    const again = await call(bay, "POST", "/v1/sandboxes", {}, { "idempotency-key": "during-outage" });
    expect(again.status).toBe(201);
    const items = (await call(bay, "GET", "/v1/sandboxes")).body.items.map((x: { id: string }) => x.id).sort();
    expect(items).toEqual([id, again.body.id].sort());
    expect((await call(bay, "POST", `/v1/sandboxes/${id}/python/exec`, { code: "1+2" })).body.output).toBe("3\n");
    expect(bay.logs.filter((l) => l.msg === "unexpected error" || l.level === "fatal")).toEqual([]);
  });

  test("the server stops answering: 503 database_unavailable (timeout) after database.call_timeout, never a hang", async () => {
    const s = await setup();
    const bay = await s.start({ database: { call_timeout: 1 } });
    const id = (await call(bay, "POST", "/v1/sandboxes", {})).body.id as string;

    s.sqld.pause();
    try {
      expectUnavailable(await call(bay, "GET", `/v1/workspaces`), "timeout");
      expectUnavailable(await call(bay, "POST", "/v1/sandboxes", {}), "timeout");
    } finally {
      s.sqld.resume();
    }
    expect((await call(bay, "GET", `/v1/sandboxes/${id}`)).status).toBe(200);
    expect((await call(bay, "GET", "/v1/sandboxes")).body.items.length).toBeGreaterThanOrEqual(1);
    expect(bay.logs.filter((l) => l.msg === "unexpected error")).toEqual([]);
  });
});
