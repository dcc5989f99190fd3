/**
 * GET /metrics checked by Prometheus's own tools (Debian's `prometheus`
 * package, installed by scripts/prereqs.sh): `promtool check metrics` lints a
 * real scrape of a Bay process that has served requests and started a
 * sandbox, and a real `prometheus` scrapes that Bay on loopback with the
 * metrics token and answers queries for Bay's series through its HTTP API.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultProfiles, shipImages } from "../../src/bay/config.ts";
import { api, type BayProcess, startBayProcess } from "../support/bay-process.ts";
import { pollUntil } from "../support/harness.ts";
import { SHIP_TAG } from "../support/images.ts";
import { freePort, removeLabelledQuietly, requireShipImages, SHIP_IMAGE } from "./support/e2e.ts";

const TOKEN = `metrics-${crypto.randomUUID()}`;
const instanceId = `e2e-prom-${crypto.randomUUID().slice(0, 8)}`;
let dir = "";
let bay: BayProcess;
let scrape = "";

/** Fails (never skips) with the fix when Prometheus's tools are missing. */
function requireTool(name: string): string {
  const path = Bun.which(name);
  if (!path) throw new Error(`${name} is not installed: run scripts/prereqs.sh (apt-get install prometheus)`);
  return path;
}

const promtool = (input: string) => {
  const r = Bun.spawnSync([requireTool("promtool"), "check", "metrics"], {
    stdin: new TextEncoder().encode(input),
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, output: `${r.stdout}${r.stderr}` };
};

beforeAll(async () => {
  requireTool("promtool");
  requireTool("prometheus");
  await requireShipImages([SHIP_IMAGE]);
  dir = mkdtempSync(join(tmpdir(), "bay-prom-"));
  bay = await startBayProcess({
    dbPath: join(dir, "bay.db"),
    instanceId,
    dir,
    config: { profiles: defaultProfiles(SHIP_TAG), driver: { helper_image: shipImages(SHIP_TAG).ship } },
    env: { BAY_METRICS_TOKEN: TOKEN },
  });
  // Traffic worth measuring: a create, a cold start through a Python call, a 404, a delete.
  const created = await api(bay.url, "POST", "/v1/sandboxes", {});
  expect(created.status).toBe(201);
  const exec = await api(bay.url, "POST", `/v1/sandboxes/${created.body.id}/python/exec`, { code: "1 + 1" });
  expect(exec.body.output).toBe("2\n");
  expect((await api(bay.url, "GET", "/v1/sandboxes/sandbox-nope")).status).toBe(404);
  expect((await api(bay.url, "DELETE", `/v1/sandboxes/${created.body.id}`)).status).toBe(204);
  const res = await fetch(`${bay.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  scrape = await res.text();
});

afterAll(async () => {
  await bay?.kill("SIGTERM");
  await removeLabelledQuietly({ "bay.instance_id": instanceId });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("promtool check metrics", () => {
  test("a real scrape passes the linter", () => {
    expect(scrape).toContain('bay_sandbox_starts_total{profile="python-default",kind="cold",outcome="ok"} 1');
    expect(scrape).toContain('bay_http_requests_total{method="POST",route="/v1/sandboxes/:id/python/exec",status="200"} 1');
    expect(scrape).toMatch(/bay_sandbox_start_duration_seconds_count\{profile="python-default",kind="cold"\} 1/);
    expect(promtool(scrape)).toEqual({ code: 0, output: "" });
  });

  test("the linter really rejects a bad exposition", () => {
    expect(promtool("# TYPE x_seconds counter\nx_seconds 1\n").code).not.toBe(0);
    expect(promtool(`${scrape}broken{\n`).code).not.toBe(0);
  });
});

describe("a real prometheus scraping Bay", () => {
  let prom: Bun.Subprocess | null = null;
  let promUrl = "";
  const logFile = () => join(dir, "prometheus.log");

  beforeAll(async () => {
    const promPort = freePort();
    const bayTarget = new URL(bay.url).host;
    const config = join(dir, "prometheus.yml");
    writeFileSync(
      config,
      [
        "global: { scrape_interval: 1s, evaluation_interval: 1s }",
        "scrape_configs:",
        "  - job_name: bay",
        "    metrics_path: /metrics",
        `    authorization: { type: Bearer, credentials: ${JSON.stringify(TOKEN)} }`,
        `    static_configs: [{ targets: [${JSON.stringify(bayTarget)}] }]`,
        "",
      ].join("\n"),
    );
    promUrl = `http://127.0.0.1:${promPort}`;
    prom = Bun.spawn(
      [
        requireTool("prometheus"),
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      { stdout: Bun.file(logFile()), stderr: Bun.file(logFile()) },
    );
  });

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      process.kill(prom.pid, "SIGTERM");
      await prom.exited;
    }
  });

  const query = async (q: string) => {
    try {
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as {
        status: string;
        data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      return body.status === "success" ? body.data.result : [];
    } catch {
      return []; // not listening yet
    }
  };

  test("scrapes Bay with the token and answers a query for a Bay series", async () => {
    const up = await pollUntil(
      () => query('up{job="bay"}'),
      (r) => r.length === 1 && r[0]!.value[1] === "1",
      60_000,
      "prometheus scraping Bay",
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nprometheus log:\n${readFileSync(logFile(), "utf8").slice(-2000)}`);
    });
    expect(up[0]!.metric.instance).toBe(new URL(bay.url).host);
    const starts = await pollUntil(
      () => query('sum(bay_sandbox_starts_total{job="bay",kind="cold",outcome="ok"})'),
      (r) => r.length === 1,
      30_000,
      "bay_sandbox_starts_total in prometheus",
    );
    expect(Number(starts[0]!.value[1])).toBe(1);
    const routes = await query('bay_http_requests_total{job="bay",route="/v1/sandboxes/:id",status="404"}');
    expect(routes.map((r) => r.metric.method)).toEqual(["GET"]);
    // Labels are templates and fixed sets: no owner or id reached Prometheus.
    const series = await query('{job="bay",__name__=~"bay_.+"}');
    expect(series.length).toBeGreaterThan(20);
    const labels = JSON.stringify(series.map((s) => s.metric));
    expect(labels).not.toContain("sandbox-");
    expect(labels).not.toContain("alice");
  }, 120_000);
});
