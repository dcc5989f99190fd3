/**
 * A sandbox's resource use (GET /v1/sandboxes/{id}/metrics, E2B's getMetrics) on
 * the harness's in-process Bay (real Docker): owner scoping, never starting
 * compute, the workspace's disk use and limit, E2B's shape and time window. The
 * engine's numbers under load are in tests/e2e/sandbox-metrics.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { type TestBay, testBays } from "../support/harness.ts";

const bay = testBays();
const MiB = 1024 * 1024;

describe("GET /v1/sandboxes/{id}/metrics", () => {
  test("an idle sandbox: not running, no CPU or memory, its disk against its limit; nothing starts", async () => {
    const t = await bay();
    const sb = (await t.json("POST", "/v1/sandboxes", { body: {} })).body;
    const m = await t.json("GET", `/v1/sandboxes/${sb.id}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body).toMatchObject({ running: false, cpu_used_pct: 0, memory_used_bytes: 0, cpu_count: expect.any(Number) });
    expect(m.body.memory_limit_bytes).toBeGreaterThan(0);
    expect(m.body.disk_limit_bytes).toBe(t.bay.deps.config.limits.workspace_size_limit_mb * MiB);
    expect(Date.parse(m.body.sampled_at)).toBeGreaterThan(Date.now() - 60_000);
    expect((await t.json("GET", `/v1/sandboxes/${sb.id}`)).body.status).toBe("idle");
  });

  test("a running one reports its runtime's use and the workspace's bytes; another owner's or an unknown id is 404", async () => {
    const t = await bay();
    const sb = (await t.json("POST", "/v1/sandboxes", { body: {} })).body;
    expect(
      (await t.json("PUT", `/v1/sandboxes/${sb.id}/filesystem/files`, { body: { path: "a.txt", content: "x".repeat(5000) } })).status,
    ).toBe(200);
    expect((await t.json("POST", `/v1/sandboxes/${sb.id}/python/exec`, { body: { code: "1" } })).status).toBe(200);
    const m = (await t.json("GET", `/v1/sandboxes/${sb.id}/metrics`)).body;
    expect(m.running).toBe(true);
    expect(m.cpu_used_pct).toBeGreaterThan(0);
    expect(m.memory_used_bytes).toBeGreaterThan(0);
    expect(m.memory_used_bytes).toBeLessThanOrEqual(m.memory_limit_bytes);
    expect(m.memory_cache_bytes).toBeGreaterThanOrEqual(5000); // a.txt, just written, is in the page cache
    expect(m.memory_cache_bytes).toBeLessThanOrEqual(m.memory_limit_bytes);
    expect(m.disk_used_bytes).toBeGreaterThanOrEqual(5000);
    const foreign = await t.json("GET", `/v1/sandboxes/${sb.id}/metrics`, { owner: "mallory" });
    expect([foreign.status, foreign.body.error.code]).toEqual([404, "not_found"]);
    expect((await t.json("GET", "/v1/sandboxes/sandbox-nope/metrics")).status).toBe(404);
    // After a stop: not running again, the workspace still counted.
    expect((await t.json("POST", `/v1/sandboxes/${sb.id}/stop`)).status).toBe(200);
    const stopped = (await t.json("GET", `/v1/sandboxes/${sb.id}/metrics`)).body;
    expect(stopped).toMatchObject({ running: false, memory_used_bytes: 0 });
    expect(stopped.disk_used_bytes).toBeGreaterThanOrEqual(5000);
  });
});

describe("E2B getMetrics", () => {
  const e2b = async (t: TestBay, path: string, owner = "alice") => {
    const res = await t.bay.app.request(`/e2b${path}`, { headers: { "x-owner": owner } });
    return { status: res.status, body: await res.json() };
  };

  test("one sample in E2B's shape, inside the asked window only; another owner's sandbox is 404", async () => {
    const t = await bay();
    const created = await t.bay.app.request("/e2b/v2/sandboxes", {
      method: "POST",
      headers: { "x-owner": "alice", "content-type": "application/json" },
      body: JSON.stringify({ templateID: "base" }),
    });
    const id = ((await created.json()) as { sandboxID: string }).sandboxID;
    const m = await e2b(t, `/sandboxes/${id}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body).toHaveLength(1);
    expect(m.body[0]).toEqual({
      timestamp: expect.any(String),
      timestampUnix: expect.any(Number),
      cpuCount: expect.any(Number),
      cpuUsedPct: 0,
      memUsed: 0,
      memTotal: expect.any(Number),
      memCache: 0,
      diskUsed: expect.any(Number),
      diskTotal: t.bay.deps.config.limits.workspace_size_limit_mb * MiB,
    });
    const now = Math.floor(Date.now() / 1000);
    expect((await e2b(t, `/sandboxes/${id}/metrics?start=${now - 60}&end=${now + 60}`)).body).toHaveLength(1);
    expect((await e2b(t, `/sandboxes/${id}/metrics?start=${now + 3600}`)).body).toEqual([]);
    expect((await e2b(t, `/sandboxes/${id}/metrics?end=${now - 3600}`)).body).toEqual([]);
    for (const q of ["start=soon", "start=", "start=0x10", "end=%201", `start=${now}&end=${now - 1}`]) {
      expect([q, (await e2b(t, `/sandboxes/${id}/metrics?${q}`)).status]).toEqual([q, 400]);
    }
    expect((await e2b(t, `/sandboxes/${id}/metrics`, "mallory")).status).toBe(404);
  });
});

describe("the metrics history (GET /v1/sandboxes/{id}/metrics/history, E2B's getMetrics)", () => {
  test("samples taken while the runtime runs, oldest first, by window; another owner's is 404; bad windows are 400", async () => {
    const t = await bay();
    const sb = (await t.json("POST", "/v1/sandboxes", { body: {} })).body;
    const history = (q = "", owner?: string) => t.json("GET", `/v1/sandboxes/${sb.id}/metrics/history${q}`, owner ? { owner } : {});
    // Idle: nothing sampled, nothing started.
    expect(await t.bay.metricsSampler.runOnce()).toMatchObject({ sampled: 0, errors: 0 });
    expect((await history()).body).toEqual({ interval_seconds: 5, items: [] });
    expect((await t.json("GET", `/v1/sandboxes/${sb.id}`)).body.status).toBe("idle");

    expect((await t.json("POST", `/v1/sandboxes/${sb.id}/python/exec`, { body: { code: "1" } })).status).toBe(200);
    // The runtime's first reading only starts the next one's interval.
    await t.bay.metricsSampler.runOnce();
    expect((await history()).body.items).toEqual([]);
    // Another interval later: one sample (the in-process Bay's real engine reading).
    await Bun.sleep(5000 - (Date.now() % 5000) + 50);
    expect((await t.bay.metricsSampler.runOnce()).errors).toBe(0);
    const items = (await history()).body.items;
    expect(items).toHaveLength(1);
    const [s] = items;
    expect(s).toEqual({
      sampled_at: expect.any(String),
      running: true,
      cpu_count: expect.any(Number),
      cpu_used_pct: expect.any(Number),
      memory_used_bytes: expect.any(Number),
      memory_limit_bytes: expect.any(Number),
      memory_cache_bytes: expect.any(Number),
      disk_used_bytes: expect.any(Number),
      disk_limit_bytes: t.bay.deps.config.limits.workspace_size_limit_mb * MiB,
    });
    const at = Date.parse(s.sampled_at);
    expect(at % 5000).toBe(0);
    expect(s.memory_used_bytes).toBeGreaterThan(0);
    expect(s.cpu_used_pct).toBeGreaterThanOrEqual(0);
    expect(s.cpu_used_pct).toBeLessThanOrEqual(100 * s.cpu_count);

    const sec = Math.floor(at / 1000);
    expect((await history(`?start=${sec}&end=${sec}`)).body.items).toHaveLength(1);
    expect((await history(`?start=${sec + 1}`)).body.items).toEqual([]);
    expect((await history(`?end=${sec - 1}`)).body.items).toEqual([]);
    for (const q of [
      "?start=soon",
      "?start=",
      "?start=-1",
      "?end=1e3",
      "?start=0x10",
      `?start=${sec}&end=${sec - 1}`,
      "?start=999999999999",
    ]) {
      const r = await history(q);
      expect([q, r.status, r.body.error?.code]).toEqual([q, 400, "validation_error"]);
    }
    expect((await history("", "mallory")).status).toBe(404);
    expect((await t.json("GET", "/v1/sandboxes/sandbox-nope/metrics/history")).status).toBe(404);

    // E2B's getMetrics answers the same samples in its shape.
    const e2b = await t.bay.app.request(`/e2b/sandboxes/${sb.id}/metrics`, { headers: { "x-owner": "alice" } });
    const e2bBody = (await e2b.json()) as Array<Record<string, unknown>>;
    expect(e2bBody).toHaveLength(1);
    expect(e2bBody[0]).toMatchObject({ timestampUnix: sec, memUsed: s.memory_used_bytes, cpuUsedPct: s.cpu_used_pct });
  }, 30_000);
});
