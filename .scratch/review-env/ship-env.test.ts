/** Review of env vars on a bare Ship container (bay-ship:latest). */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startShip, type ShipContainer } from "../../tests/ship/support/container.ts";
import { ShipClient } from "../../tests/ship/support/caller.ts";

let ship: ShipContainer;
let client: ShipClient;
beforeAll(async () => {
  ship = await startShip("bay-ship:latest");
  client = new ShipClient((p, i) => fetch(`${ship.baseUrl}${p}`, i), ship.credentials.secret);
}, 120_000);
afterAll(async () => { await ship?.remove(); });

const log = (label: string, v: unknown) => console.log(`### ${label}:`, typeof v === "string" ? v : JSON.stringify(v, null, 0).slice(0, 1500));

test("JS kernel: inherited Object.prototype names are not restored", async () => {
  const env = { constructor: "C", toString: "T", valueOf: "V", hasOwnProperty: "H", __proto__x: "ok" };
  const body = JSON.stringify({ language: "javascript", code: "JSON.stringify(Object.keys(process.env).filter(k => /constructor|toString|valueOf|hasOwn|__proto__/.test(k)))", env });
  const during = await client.call("/code/exec", { method: "POST", body, headers: { "content-type": "application/json" } });
  log("js during", await during.json());
  const after = await client.code({ language: "javascript", code: "JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => /constructor|toString|valueOf|hasOwn|__proto__/.test(k))))" });
  log("js after", after.body);
  const child = await client.code({ language: "javascript", code: "require('node:child_process').execSync(\"env | grep -E 'constructor|toString|valueOf|hasOwn' || true\").toString()" });
  log("js child env after", child.body.output + JSON.stringify(child.body.data));
  const str = await client.code({ language: "javascript", code: "String(process.env)" });
  log("js String(process.env) after", { success: str.body.success, error: str.body.error?.slice(0, 200) });
  const ins = await client.code({ language: "javascript", code: "console.log(process.env); 1" });
  log("js console.log(process.env) after", { success: ins.body.success, error: ins.body.error?.slice?.(0, 200) });
  // __proto__ as a name: is it set at all?
  const proto = await client.call("/code/exec", { method: "POST", headers: { "content-type": "application/json" }, body: '{"language":"javascript","code":"[process.env[\\"__proto__\\"] === Object.prototype, Object.hasOwn(process.env, \\"__proto__\\")]","env":{"__proto__":"P"}}' });
  log("js __proto__ env", await proto.json());
  const pyproto = await client.call("/ipython/exec", { method: "POST", headers: { "content-type": "application/json" }, body: '{"code":"import os; os.environ.get(\\"__proto__\\")","env":{"__proto__":"P"}}' });
  log("py __proto__ env", await pyproto.json());
}, 120_000);

test("large values: E2BIG paths", async () => {
  const big = "x".repeat(200 * 1024);
  const sh = await client.json("POST", "/shell/exec", { command: "echo hi", env: { BIG: big } });
  log("shell/exec big value", { status: sh.status, body: sh.body });
  const term = await client.json("POST", "/terminals", { env: { BIG: big } });
  log("terminal big value", { status: term.status, body: term.body });
  const py = await client.json("POST", "/ipython/exec", { code: "import subprocess\nsubprocess.run(['true']).returncode", env: { BIG: big } });
  log("python run big value", { status: py.status, success: py.body.success, error: py.body.error?.slice(-200) });
  const pyAfter = await client.json("POST", "/ipython/exec", { code: "import os, subprocess\n(len(os.environ.get('BIG','')), subprocess.run(['true']).returncode)" });
  log("python after", pyAfter.body.output);
  // many vars: 1024 x 1900 bytes (~1.9 MB, under Bay's 2 MiB) on a terminal
  const many = Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`V${i}`, "y".repeat(1900)]));
  const t2 = await client.json("POST", "/terminals", { env: many });
  log("terminal 1024x1900", { status: t2.status, body: t2.body });
  const s2 = await client.json("POST", "/shell/exec", { command: "echo hi", env: many });
  log("shell 1024x1900", { status: s2.status, body: s2.body });
}, 120_000);

test("terminal cwd: symlinks, .., absolute, /proc", async () => {
  await client.shell("ln -sfn / /workspace/rootlink; ln -sfn /proc /workspace/proclink; mkdir -p /workspace/d");
  for (const cwd of ["rootlink", "proclink/1", "/", "/proc", "../", "d/../..", "/workspace/d", "d\u0000x"]) {
    const res = await client.json("POST", "/terminals", { cwd });
    log(`terminal cwd ${JSON.stringify(cwd)}`, { status: res.status, body: res.body });
    if (res.status === 201) await client.json("DELETE", `/terminals/${res.body.terminal_id}`).catch(() => {});
  }
}, 60_000);
