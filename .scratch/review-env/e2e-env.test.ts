/** Review: env vars through a real Bay (spawned) + official E2B SDKs. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Sandbox as CodeSandbox } from "@e2b/code-interpreter";
import { Sandbox } from "e2b";
import { type BayProcess, spawnBay } from "../../tests/e2e/support/e2e.ts";
import { within } from "../../tests/support/within.ts";
import { join } from "node:path";

const KEY = `e2b_${"a1".repeat(20)}`;
let bay: BayProcess;
const created: string[] = [];
const log = (label: string, v: unknown) => console.log(`### ${label}:`, typeof v === "string" ? v : JSON.stringify(v).slice(0, 1200));
const v1 = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${bay.url}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: any = text;
  try { parsed = JSON.parse(text); } catch {}
  return { status: res.status, body: parsed };
};
const cpuTicks = async (pid: number) => {
  const f = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]);
};

beforeAll(async () => {
  bay = await spawnBay({ BAY_AUTH_MODE: "api_key", BAY_API_KEY: KEY, BAY_API_KEY_OWNER: "alice" }, { stderrFile: join(import.meta.dir, "bay-stderr.log") });
  process.env.E2B_API_URL = `${bay.url}/e2b`;
  process.env.E2B_SANDBOX_URL = `${bay.url}/e2b`;
  process.env.E2B_API_KEY = KEY;
}, 60_000);
afterAll(async () => {
  for (const id of created) await Sandbox.kill(id).catch(() => {});
  await bay?.close();
});

test("E2B: one envVar > 128 KiB is accepted at create, then every command/PTY/subprocess fails", async () => {
  const sb = await within(60_000, "create", CodeSandbox.create({ envs: { ["N".repeat(130 * 1024)]: "v" } }));
  created.push(sb.sandboxId);
  const r = await within(60_000, "runCode", sb.runCode("import subprocess\nsubprocess.run(['true']).returncode"));
  log("runCode subprocess", { text: r.text, error: r.error?.value, name: r.error?.name });
  const r2 = await within(60_000, "runCode2", sb.runCode("import os\nos.environ.pop('BIG'); 1"));
  log("runCode pop", { text: r2.text, error: r2.error?.value });
  const cmd = await within(60_000, "cmd", sb.commands.run("echo hi").then((x) => ({ ok: x.stdout }), (e) => ({ err: String(e).slice(0, 400) })));
  log("commands.run", cmd);
  const pty = await within(60_000, "pty", sb.pty.create({ cols: 80, rows: 24, onData: () => {} }).then((x) => ({ pid: x.pid }), (e) => ({ err: String(e).slice(0, 400) })));
  log("pty.create", pty);
}, 240_000);

test("E2B: 1024 envVars at create: PTY (SDK adds TERM/LANG/LC_ALL) and commands with envs are refused", async () => {
  const envs = Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`V${i}`, "v"]));
  const sb = await within(60_000, "create", Sandbox.create({ envs }));
  created.push(sb.sandboxId);
  const cmd = await within(60_000, "cmd", sb.commands.run("echo $V1", { envs: { EXTRA: "1" } }).then((x) => ({ ok: x.stdout }), (e) => ({ err: String(e).slice(0, 400) })));
  log("commands.run +1 env", cmd);
  const pty = await within(60_000, "pty", sb.pty.create({ cols: 80, rows: 24, onData: () => {} }).then((x) => ({ pid: x.pid }), (e) => ({ err: String(e).slice(0, 400) })));
  log("pty.create", pty);
}, 240_000);

test("E2B: ~1.9 MB of envVars: per-runCode cost on Bay", async () => {
  const heavy = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`H${i}_` + "n".repeat(940), "h".repeat(1024)]));
  const a = await within(60_000, "create heavy", CodeSandbox.create({ envs: heavy }));
  const b = await within(60_000, "create light", CodeSandbox.create());
  created.push(a.sandboxId, b.sandboxId);
  for (const [name, sb] of [["heavy", a], ["light", b]] as const) {
    await within(60_000, "warm", sb.runCode("1"));
    const t0 = performance.now();
    const c0 = await cpuTicks(bay.pid);
    for (let i = 0; i < 20; i++) await within(60_000, "run", sb.runCode("1"));
    const c1 = await cpuTicks(bay.pid);
    log(`${name}: 20 runCode`, { ms: Math.round(performance.now() - t0), bayCpuTicks: c1 - c0 });
  }
}, 300_000);

test("/v1: terminal cwd refusals before start; env on python/exec; 1024 x 1900 env", async () => {
  const sb = await v1("POST", "/sandboxes", {});
  const id = sb.body.id;
  for (const cwd of ["..", "/etc", "%2e%2e", "a/../../b"]) {
    const res = await fetch(`${bay.url}/v1/sandboxes/${id}/terminal?cwd=${encodeURIComponent(cwd)}`, {
      headers: { authorization: `Bearer ${KEY}`, connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    log(`terminal cwd ${cwd}`, { status: res.status, body: await res.text() });
  }
  log("status after refusals", (await v1("GET", `/sandboxes/${id}`)).body.status);
  const many = Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`V${i}`, "y".repeat(1900)]));
  const t0 = performance.now();
  const r = await v1("POST", `/sandboxes/${id}/python/exec`, { code: "import os\nlen([k for k in os.environ if k.startswith('V')])", env: many });
  log("python/exec 1024x1900 (cold)", { ms: Math.round(performance.now() - t0), status: r.status, out: r.body.output, err: r.body.error });
  const t1 = performance.now();
  const r1 = await v1("POST", `/sandboxes/${id}/python/exec`, { code: "1", env: many });
  log("python/exec 1024x1900 (warm)", { ms: Math.round(performance.now() - t1), status: r1.status });
  const t2 = performance.now();
  await v1("POST", `/sandboxes/${id}/python/exec`, { code: "1" });
  log("python/exec no env (warm)", { ms: Math.round(performance.now() - t2) });
  const after = await v1("POST", `/sandboxes/${id}/python/exec`, { code: "import os\nlen([k for k in os.environ if k.startswith('V')])" });
  log("after", after.body.output);
  const js = await v1("POST", `/sandboxes/${id}/code/exec`, { language: "javascript", code: "1", env: { constructor: "x" } });
  const js2 = await v1("POST", `/sandboxes/${id}/code/exec`, { language: "javascript", code: "process.env.constructor" });
  log("/v1 js constructor after", { first: js.status, after: js2.body.output });
  const big = await v1("POST", `/sandboxes/${id}/shell/exec`, { command: "true", env: { BIG: "x".repeat(200 * 1024) } });
  log("/v1 shell/exec 200KiB value", big);
  const base = await v1("POST", `/sandboxes/${id}/python/exec`, { code: "1", base_env: { A: "1" } });
  log("/v1 base_env", base);
  await v1("DELETE", `/sandboxes/${id}`);
}, 300_000);
