/**
 * The JS kernel inside the real runtime image: the compiled `ship` binary run as
 * `ship js-kernel` by tini, as uid 1000, in /workspace, with no runtime other than Ship's
 * own. The protocol runs over `docker run -i` (SIGINT reaches the kernel through docker's
 * signal proxy and tini). Needs Docker and the image (`bun run image:build`); fails
 * loudly without them. Prints the cold start, `1+1` latency and idle RSS it measures.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JsCellResult, JsKernelProcess } from "../../src/ship/kernel/js/js-kernel-process.ts";
import { INTERRUPTED_ERROR } from "../../src/ship/kernel/js/kernel.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { requireImage } from "./support/container.ts";

const name = `bay-test-jskernel-${crypto.randomUUID().slice(0, 8)}`;
let root: string;
let kernel: JsKernelProcess;

/** A workspace with `bay-tiny-pkg` installed by `bun add` from a local tarball, the registry unreachable. */
function workspaceWithPackage(): string {
  const pkg = join(root, "tiny");
  mkdirSync(pkg);
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "bay-tiny-pkg", version: "2.0.0", main: "index.js" }));
  writeFileSync(join(pkg, "index.js"), "exports.shout = (s) => s.toUpperCase() + '!';\n");
  const env = {
    ...process.env,
    BUN_CONFIG_REGISTRY: "http://127.0.0.1:9/",
    NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/",
    BUN_INSTALL_CACHE_DIR: join(root, "cache"),
  };
  const pack = Bun.spawnSync([process.execPath, "pm", "pack"], { cwd: pkg, env, stdout: "pipe", stderr: "pipe" });
  if (pack.exitCode !== 0) throw new Error(`bun pm pack failed: ${pack.stderr}`);
  const tarball = join(pkg, readdirSync(pkg).find((f) => f.endsWith(".tgz"))!);
  const workspace = join(root, "workspace");
  mkdirSync(workspace);
  writeFileSync(join(workspace, "package.json"), JSON.stringify({ name: "workspace", private: true }));
  const add = Bun.spawnSync([process.execPath, "add", tarball], { cwd: workspace, env, stdout: "pipe", stderr: "pipe" });
  if (add.exitCode !== 0) throw new Error(`bun add failed: ${add.stderr}`);
  // uid 1000 in the container reads the bind mount.
  Bun.spawnSync(["chmod", "-R", "a+rX", root]);
  chmodSync(root, 0o755);
  return workspace;
}

async function run(code: string, interruptWhenSeen?: string): Promise<JsCellResult> {
  let sent = false;
  const pending = kernel.send(code, (event) => {
    if (interruptWhenSeen && !sent && event.event === "stream" && event.text.includes(interruptWhenSeen)) {
      sent = true;
      kernel.interrupt();
    }
  });
  return Promise.race([pending, kernel.exited.then(() => Promise.reject(new Error(kernel.describeExit())))]);
}

beforeAll(async () => {
  requireImage(SHIP_IMAGE);
  root = mkdtempSync(join(tmpdir(), "js-kernel-image-"));
  const workspace = workspaceWithPackage();
  kernel = new JsKernelProcess({
    cwd: root,
    maxOutputBytes: 1024 * 1024,
    // As Ship starts it: BUN_JSC_* (Ship's own tuning) removed from the kernel's environment.
    command: [
      "docker",
      "run",
      "--rm",
      "-i",
      "--name",
      name,
      "--label",
      "bay.test=js-kernel",
      "--pids-limit",
      "256",
      "--memory",
      "512m",
      "-v",
      `${workspace}:/workspace`,
      "--entrypoint",
      "/usr/bin/tini",
      SHIP_IMAGE,
      "--",
      "/usr/bin/env",
      "-u",
      "BUN_JSC_useConcurrentGC",
      "-u",
      "BUN_JSC_useConcurrentJIT",
      "-u",
      "BUN_JSC_numberOfGCMarkers",
      "/usr/local/bin/ship",
      "js-kernel",
    ],
  });
  await kernel.ready;
});

afterAll(() => {
  kernel?.kill();
  Bun.spawnSync(["docker", "rm", "-f", name], { stdout: "ignore", stderr: "ignore" });
  if (root) rmSync(root, { recursive: true, force: true });
});

describe(`${SHIP_IMAGE}: ship js-kernel`, () => {
  test("runs the compiled binary as uid 1000 in /workspace, keeps state, imports an installed package", async () => {
    const who = await run("[process.getuid(), process.cwd(), process.execPath, Bun.main.startsWith('/$bunfs/'), Bun.version]");
    expect(who.output).toBe(`[ 1000, "/workspace", "/usr/local/bin/ship", true, "${Bun.version}" ]\n`);
    await run("import { shout } from 'bay-tiny-pkg'\nconst word: string = 'ahoy'");
    expect((await run("shout(word)")).output).toBe('"AHOY!"\n');
  });

  test("an infinite loop is interrupted through docker's signal proxy and tini, the state survives", async () => {
    const looped = await run("console.log('looping')\nwhile (true) {}", "looping");
    expect(looped).toMatchObject({ success: false, error: INTERRUPTED_ERROR });
    expect((await run("shout(word)")).output).toBe('"AHOY!"\n');
  });

  test("garbage on fd 1 from the cell and from a child stays output", async () => {
    const res = await run(
      'require("node:fs").writeSync(1, "{\\"event\\":\\"ready\\"}\\n"); Bun.spawnSync(["echo", "from-child"], { stdout: "inherit" }); 7',
    );
    expect(res.output).toBe('{"event":"ready"}\nfrom-child\n7\n');
  });

  test("measure: cold start to ready, 1+1 latency, idle RSS of a kernel process in the image", async () => {
    // From inside the container: another `ship js-kernel`, timed from spawn to its ready line.
    const pythonDriver = await Bun.file(join(import.meta.dir, "../../src/ship/kernel/driver.py")).text();
    const pythonChannel = await Bun.file(join(import.meta.dir, "../../src/ship/kernel/driver_channel.py")).text();
    const pythonCapture = await Bun.file(join(import.meta.dir, "../../src/ship/kernel/driver_capture.py")).text();
    const measure = await run(`
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BUN_JSC_")));
async function measure(extra, argv = [process.execPath, "js-kernel"]) {
  const t0 = performance.now();
  const child = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "ignore", env: { ...env, ...extra } });
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const next = async () => {
    for (;;) {
      const nl = buffered.indexOf("\\n");
      if (nl >= 0) { const line = buffered.slice(0, nl); buffered = buffered.slice(nl + 1); return JSON.parse(line); }
      const { value, done } = await reader.read();
      if (done) throw new Error("kernel closed its stdout");
      buffered += decoder.decode(value, { stream: true });
    }
  };
  await next();
  const ready = performance.now() - t0;
  const latencies = [];
  for (let id = 1; id <= 30; id++) {
    const t = performance.now();
    child.stdin.write(JSON.stringify({ id, code: "1+1" }) + "\\n");
    child.stdin.flush();
    let event;
    do { event = await next(); } while (event.id !== id || event.event === "stream");
    if (event.output !== "2\\n") throw new Error("unexpected " + JSON.stringify(event));
    latencies.push(performance.now() - t);
  }
  await Bun.sleep(1000);
  const status = require("node:fs").readFileSync("/proc/" + child.pid + "/status", "utf8");
  child.kill();
  const first = latencies[0];
  latencies.sort((a, b) => a - b);
  return { ready_ms: +ready.toFixed(1), first_1plus1_ms: +first.toFixed(2), median_1plus1_ms: +latencies[15].toFixed(2),
           idle_rss_mib: +(Number(/VmRSS:\\s+(\\d+)/.exec(status)[1]) / 1024).toFixed(1) };
}
const runs = [];
for (let i = 0; i < 3; i++) runs.push(await measure({}));
const withShipJsc = await measure({ BUN_JSC_useConcurrentGC: "0", BUN_JSC_useConcurrentJIT: "0", BUN_JSC_numberOfGCMarkers: "1" });
// Ship's Python kernel driver, the same way, for a side-by-side figure.
require("node:fs").writeFileSync("/tmp/bay-driver.py", ${JSON.stringify(pythonDriver)});
require("node:fs").writeFileSync("/tmp/bay-driver-channel.py", ${JSON.stringify(pythonChannel)});
require("node:fs").writeFileSync("/tmp/bay-driver-capture.py", ${JSON.stringify(pythonCapture)});
const python = await measure({ SHIP_WORKSPACE: "/workspace" }, ["python3", "-I", "-u", "/tmp/bay-driver.py", "/tmp/bay-driver-channel.py", "/tmp/bay-driver-capture.py"]);
JSON.stringify({ runs, withShipJsc, python })`);
    expect(measure.error).toBeNull();
    const numbers = JSON.parse(JSON.parse(measure.output));
    console.log(`[js-kernel in ${SHIP_IMAGE}] ${JSON.stringify(numbers)}`);
    expect(numbers.runs).toHaveLength(3);
    expect(numbers.python.idle_rss_mib).toBeGreaterThan(0);
  });
});
