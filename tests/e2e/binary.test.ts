/**
 * The single binary: `bun run build` makes dist/bay (reused when it is newer
 * than every input), which then runs from an empty directory, with no
 * node_modules in reach, on a fresh libSQL file database.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { version as packageVersion } from "../../package.json";
import { createDriver } from "../../src/bay/bootstrap.ts";
import { configSchema } from "../../src/bay/config.ts";
import { freePort } from "../support/free-port.ts";
import { BINARY, ensureBinary, ROOT } from "./support/binary.ts";

const INSTANCE_ID = `test-bin-${crypto.randomUUID().slice(0, 8)}`;

let dir: string;
let base: string;
let shared: Launched;
const launched: Launched[] = [];

interface Launched {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  base: string;
  output: () => string;
  /** Resolves when both stdout and stderr have been read to their end. */
  drained: Promise<void>;
}

async function drain(stream: ReadableStream<Uint8Array>, sink: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) sink(decoder.decode(r.value, { stream: true }));
}

/** Spawns dist/bay on a fresh database and free port in `dir`; resolves once /health answers. */
async function launch(): Promise<Launched> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const proc = Bun.spawn([BINARY], {
    cwd: dir, // no node_modules, no src: the binary must carry everything
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      BAY_DB_URL: `file:${join(dir, `bay-${port}.db`)}`,
      BAY_HOST: "127.0.0.1",
      BAY_PORT: String(port),
      BAY_AUTH_MODE: "anonymous",
      BAY_INSTANCE_ID: INSTANCE_ID,
      ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  const sink = (text: string) => void (output += text);
  const l: Launched = {
    proc,
    base: url,
    output: () => output,
    drained: Promise.all([drain(proc.stdout, sink), drain(proc.stderr, sink)]).then(() => {}),
  };
  launched.push(l);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`dist/bay exited with ${proc.exitCode}:\n${output}`);
    const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`dist/bay did not answer /health within 15 s:\n${output}`);
    await Bun.sleep(50);
  }
  console.log(
    `dist/bay: ${(statSync(BINARY).size / 1024 / 1024).toFixed(1)} MiB, /health answered ${(performance.now() - started).toFixed(0)} ms after spawn`,
  );
  return l;
}

beforeAll(async () => {
  ensureBinary();
  dir = mkdtempSync(join(tmpdir(), "bay-bin-"));
  shared = await launch();
  base = shared.base;
});

afterAll(async () => {
  for (const { proc } of launched) {
    if (proc.exitCode !== null) continue;
    proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited, Bun.sleep(5000).then(() => null)]);
    if (exited === null) proc.kill("SIGKILL");
  }
  const driver = createDriver(configSchema.parse({}));
  for (const c of await driver.listContainers({ instance_id: INSTANCE_ID }).catch(() => []))
    await driver.destroyContainer(c.id).catch(() => {});
  for (const v of await driver.listVolumes({ instance_id: INSTANCE_ID }).catch(() => [])) await driver.removeVolume(v.name).catch(() => {});
  await driver.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("GET /health answers 200 with the database ok", async () => {
  const res = await fetch(`${base}/health`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { database: { ok: boolean }; version: string };
  expect(body.database).toEqual({ ok: true });
  // package.json's version, embedded; /openapi.json's info.version says the same.
  expect(body.version).toBe(packageVersion);
});

test("POST /v1/sandboxes creates an idle sandbox (libSQL writes work)", async () => {
  const res = await fetch(`${base}/v1/sandboxes`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({}),
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { id: string; status: string };
  expect(body.status).toBe("idle");
  const list = await fetch(`${base}/v1/sandboxes`);
  expect(list.status).toBe(200);
  expect(JSON.stringify(await list.json())).toContain(body.id);
  expect((await fetch(`${base}/v1/sandboxes/${body.id}`, { method: "DELETE" })).status).toBeLessThan(300);
});

test("what loads at first use is in the binary: a multipart workspace upload (busboy, the spool, tar-stream in a helper) is stored and read back", async () => {
  const created = await fetch(`${base}/v1/workspaces`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const data = crypto.getRandomValues(new Uint8Array(100_000));
  const form = new FormData();
  form.append("path", "bin/lazy.bin");
  form.append("file", new Blob([data]), "lazy.bin");
  const up = await fetch(`${base}/v1/workspaces/${id}/filesystem/upload`, { method: "POST", body: form });
  expect(up.status).toBe(200);
  const back = await fetch(`${base}/v1/workspaces/${id}/filesystem/download?path=bin/lazy.bin`);
  expect(back.status).toBe(200);
  expect(new Uint8Array(await back.arrayBuffer())).toEqual(data);
  expect((await fetch(`${base}/v1/workspaces/${id}`, { method: "DELETE" })).status).toBeLessThan(300);
}, 60_000);

test("GET /openapi.json answers 200 with the spec: the embedded YAML, parsed", async () => {
  const res = await fetch(`${base}/openapi.json`);
  expect(res.status).toBe(200);
  const spec = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
  expect(spec.openapi).toStartWith("3.");
  expect(Object.keys(spec.paths)).toContain("/v1/sandboxes");
  expect(spec).toEqual(parseYaml(readFileSync(join(ROOT, "openapi/bay.v1.yaml"), "utf8")));
  expect((spec as unknown as { info: { version: string } }).info.version).toBe(packageVersion);
});

test("GET /docs and every asset it loads come from the binary, byte for byte swagger-ui-dist's", async () => {
  const page = await fetch(`${base}/docs`);
  expect(page.status).toBe(200);
  const html = await page.text();
  const srcs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  expect(srcs.sort()).toEqual(["docs/assets/docs.js", "docs/assets/swagger-ui-bundle.js", "docs/assets/swagger-ui.css"]);
  for (const [file, type] of [
    ["swagger-ui-bundle.js", "text/javascript"],
    ["swagger-ui.css", "text/css"],
  ] as const) {
    const res = await fetch(`${base}/docs/assets/${file}`, { headers: { "accept-encoding": "identity" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith(type);
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(ROOT, "node_modules/swagger-ui-dist", file)))).toBe(true);
  }
  // Compressed when the client accepts it (fetch decompresses transparently).
  const gz = await fetch(`${base}/docs/assets/swagger-ui-bundle.js`, { headers: { "accept-encoding": "gzip" } });
  expect(gz.headers.get("content-encoding")).toBe("gzip");
  expect((await gz.text()).length).toBeGreaterThan(1_000_000);
});

test("SIGTERM shuts the binary down cleanly", async () => {
  // Its own process: the other tests keep theirs, in any order.
  const own = await launch();
  own.proc.kill("SIGTERM");
  expect(await own.proc.exited).toBe(0);
  await own.drained; // everything it wrote before exiting has been read
  expect(own.output()).toContain("shutting down");
});
