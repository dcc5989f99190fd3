/**
 * Idempotency across processes: two real Bay servers (`bun run src/bay/main.ts`)
 * on one libSQL database, a file and a real libSQL server (sqld) in turn. 50
 * creates under one key, split 25/25 between them, make
 * exactly one sandbox; a replay after restarting a server returns the stored
 * response byte for byte. Sandbox create is lazy, so no container starts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { freePort } from "../support/free-port.ts";
import { startSqld, type Sqld } from "../support/sqld.ts";

const ROOT = join(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "bay-idem-mp-"));
/** The database of the tests running now (see the describe blocks at the end). */
let dbUrl = "";
let dbKind = "";
const runId = crypto.randomUUID().slice(0, 8);

interface Server {
  proc: ReturnType<typeof Bun.spawn>;
  url: string;
  stderr: () => string;
}
const servers = new Set<Server>();

async function startBay(name: string): Promise<Server> {
  const port = freePort();
  const env: Record<string, string> = {};
  // Only this test's settings: no BAY_* from the surrounding shell.
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("BAY_")) env[k] = v;
  Object.assign(env, {
    BAY_HOST: "127.0.0.1",
    BAY_PORT: String(port),
    BAY_DB_URL: dbUrl,
    BAY_AUTH_MODE: "anonymous",
    BAY_INSTANCE_ID: `test-mp-${runId}-${dbKind}-${name}`,
    BAY_LOG_LEVEL: "warn",
  });
  const proc = Bun.spawn(["bun", "run", "src/bay/main.ts"], { cwd: ROOT, env, stdout: "ignore", stderr: "pipe" });
  let err = "";
  void (async () => {
    const decoder = new TextDecoder();
    const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      err += decoder.decode(value, { stream: true });
    }
  })();
  const server: Server = { proc, url: `http://127.0.0.1:${port}`, stderr: () => err };
  servers.add(server);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`bay ${name} exited with ${proc.exitCode}: ${err}`);
    try {
      const res = await fetch(`${server.url}/health`);
      await res.arrayBuffer();
      if (res.status < 500 || res.status === 503) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`bay ${name} did not answer /health: ${err}`);
    await Bun.sleep(100);
  }
}

async function stopBay(server: Server, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
  servers.delete(server);
  if (server.proc.exitCode === null) server.proc.kill(signal);
  const killer = setTimeout(() => server.proc.kill("SIGKILL"), 5_000);
  await server.proc.exited;
  clearTimeout(killer);
}

function create(server: Server, key: string, body: string, owner = "alice"): Promise<Response> {
  return fetch(`${server.url}/v1/sandboxes`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-owner": owner, "idempotency-key": key },
  });
}

async function countSandboxes(ownerPrefix: string): Promise<number> {
  const db = createClient({ url: dbUrl });
  try {
    // The processes run in anonymous mode: their owners are `anon:` + X-Owner.
    const rs = await db.execute({ sql: "SELECT COUNT(*) AS n FROM sandboxes WHERE owner LIKE ?", args: [`anon:${ownerPrefix}%`] });
    return Number(rs.rows[0]!.n);
  } finally {
    db.close();
  }
}

// Each test starts (and stops) its own pair of processes on the shared file and
// counts only its own owners, so neither depends on the other or on their order.
let sqld: Sqld | null = null;
afterAll(async () => {
  await Promise.all([...servers].map((s) => stopBay(s)));
  await sqld?.close();
  rmSync(dir, { recursive: true, force: true });
});

const exactlyOnce = async () => {
  const [a, b] = await Promise.all([startBay("t1-a"), startBay("t1-b")]);
  const owner = `alice-${runId}`;
  const body = '{"profile":"python-default","ttl":3600}';
  const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => create(i % 2 === 0 ? a : b, "multi-process", body, owner)));
  const results = await Promise.all(responses.map(async (r) => ({ status: r.status, text: await r.text() })));
  const created = results.filter((r) => r.status === 201);
  const conflicts = results.filter((r) => r.status === 409);
  const unexpected = results.filter((r) => r.status !== 201 && r.status !== 409);
  expect(unexpected).toEqual([]);
  expect(created.length).toBeGreaterThanOrEqual(1);
  // Every 201 is the same response: the original or a byte-exact replay of it.
  expect(new Set(created.map((r) => r.text)).size).toBe(1);
  for (const c of conflicts) expect(JSON.parse(c.text).error.code).toBe("conflict");
  expect(await countSandboxes(owner)).toBe(1);
  for (const s of [a, b]) expect(s.stderr()).not.toContain("SQLITE_BUSY");

  // A replay after a restart still returns the stored response. SIGKILL: the
  // record was committed before the response left, so not even a crash loses it.
  await stopBay(a, "SIGKILL");
  const a2 = await startBay("t1-a2");
  const replay = await create(a2, "multi-process", body, owner);
  expect(replay.status).toBe(201);
  expect(replay.headers.get("idempotent-replayed")).toBe("true");
  expect(await replay.text()).toBe(created[0]!.text);
  // The same key with another body is still a conflict there, and the other process agrees.
  expect((await create(a2, "multi-process", '{"ttl":1}', owner)).status).toBe(409);
  expect(await (await create(b, "multi-process", body, owner)).text()).toBe(created[0]!.text);
  expect(await countSandboxes(owner)).toBe(1);
  await Promise.all([stopBay(a2), stopBay(b)]);
};

const distinctKeys = async () => {
  const [c, d] = await Promise.all([startBay("t2-c"), startBay("t2-d")]);
  const prefix = `distinct-${runId}-`;
  const targets = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? c : d));
  const responses = await Promise.all(targets.map((s, i) => create(s, `distinct-${i}`, "{}", `${prefix}${i % 4}`)));
  const statuses = await Promise.all(responses.map(async (r) => (r.status === 201 ? 201 : `${r.status} ${await r.text()}`)));
  expect(statuses).toEqual(Array(40).fill(201));
  // Both processes served their half: 20 creates each answered 201.
  for (const s of [c, d]) expect(targets.filter((x, i) => x === s && statuses[i] === 201)).toHaveLength(20);
  expect(new Set(targets).size).toBe(2);
  expect(await countSandboxes(prefix)).toBe(40);
  for (const s of [c, d]) expect(s.stderr()).not.toContain("SQLITE_BUSY");
  await Promise.all([stopBay(c), stopBay(d)]);
};

describe("on one libSQL file", () => {
  beforeAll(() => {
    dbUrl = `file:${join(dir, "bay.db")}`;
    dbKind = "file";
  });
  test("50 creates under one key split across two Bay processes → exactly one sandbox", exactlyOnce, 60_000);
  test("concurrent creates under distinct keys from both processes all succeed (no SQLITE_BUSY)", distinctKeys, 60_000);
});

describe("on one libSQL server (sqld)", () => {
  beforeAll(async () => {
    sqld = await startSqld();
    dbUrl = sqld.url;
    dbKind = "sqld";
  });
  test("50 creates under one key split across two Bay processes → exactly one sandbox", exactlyOnce, 60_000);
  test("concurrent creates under distinct keys from both processes all succeed", distinctKeys, 60_000);
});
