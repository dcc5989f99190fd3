/** Bay CPU per E2B runCode / commands.run with a sandbox holding ~2 MB of envVars, with a CPU profile of Bay. */
import { afterAll, beforeAll, test } from "bun:test";
import { Sandbox as CodeSandbox } from "@e2b/code-interpreter";
import { Sandbox } from "e2b";
import { freePort, removeLabelledQuietly } from "../../tests/e2e/support/e2e.ts";
import { within } from "../../tests/support/within.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const KEY = `e2b_${"a1".repeat(20)}`;
const ROOT = join(import.meta.dir, "../..");
const port = freePort();
const dir = mkdtempSync(join(tmpdir(), "bay-prof-"));
const instanceId = `review-${crypto.randomUUID().slice(0, 8)}`;
let proc: ReturnType<typeof Bun.spawn>;
const created: string[] = [];
const url = `http://127.0.0.1:${port}`;
const cpuTicks = async (pid: number) => {
  const f = (await Bun.file(`/proc/${pid}/stat`).text()).split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]);
};
beforeAll(async () => {
  const profile = process.env.PROFILE === "1";
  proc = Bun.spawn(["bun", ...(profile ? ["--cpu-prof-md", `--cpu-prof-dir=${import.meta.dir}/prof`] : []), "run", "src/bay/main.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root",
      BAY_HOST: "127.0.0.1", BAY_PORT: String(port), BAY_AUTH_MODE: "api_key", BAY_API_KEY: KEY, BAY_API_KEY_OWNER: "alice",
      BAY_DB_URL: `file:${join(dir, "bay.db")}`, BAY_INSTANCE_ID: instanceId, BAY_LOG_LEVEL: "warn",
    },
    stdout: "ignore", stderr: "inherit",
  });
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    await Bun.sleep(100);
  }
  process.env.E2B_API_URL = `${url}/e2b`;
  process.env.E2B_SANDBOX_URL = `${url}/e2b`;
  process.env.E2B_API_KEY = KEY;
}, 60_000);
afterAll(async () => {
  for (const id of created) await Sandbox.kill(id).catch(() => {});
  proc.kill("SIGINT");
  await Promise.race([proc.exited, Bun.sleep(8000)]);
  if (proc.exitCode === null) proc.kill("SIGKILL");
  await removeLabelledQuietly({ "bay.instance_id": instanceId });
  rmSync(dir, { recursive: true, force: true });
});

test("Bay CPU per call, heavy vs light envVars", async () => {
  const heavy = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`H${i}_` + "n".repeat(940), "h".repeat(1024)]));
  const a = await within(60_000, "create heavy", CodeSandbox.create({ envs: heavy }));
  const b = await within(60_000, "create light", CodeSandbox.create());
  created.push(a.sandboxId, b.sandboxId);
  const N = Number(process.env.N ?? 20);
  for (const [name, sb] of [["heavy", a], ["light", b]] as const) {
    await within(60_000, "warm", sb.runCode("1"));
    await within(60_000, "warm cmd", sb.commands.run("true"));
    let c0 = await cpuTicks(proc.pid);
    let t0 = performance.now();
    for (let i = 0; i < N; i++) await within(60_000, "run", sb.runCode("1"));
    console.log(`### ${name} runCode x${N}: wall ${Math.round(performance.now() - t0)} ms, Bay CPU ${(await cpuTicks(proc.pid)) - c0}0 ms`);
    c0 = await cpuTicks(proc.pid);
    t0 = performance.now();
    for (let i = 0; i < N; i++) await within(60_000, "cmd", sb.commands.run("true"));
    console.log(`### ${name} commands.run x${N}: wall ${Math.round(performance.now() - t0)} ms, Bay CPU ${(await cpuTicks(proc.pid)) - c0}0 ms`);
  }
}, 300_000);
