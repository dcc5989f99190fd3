/**
 * `bun run start`: the pre-flight (engine, images) and Bay coming up after it.
 * The end-to-end cases run the real script on a fresh database and free port
 * with BAY_SKIP_IMAGE_BUILD=1, so no case can start a multi-minute image build;
 * the build path itself is covered with a fake engine and a fake ensureImages.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configSchema } from "../../src/bay/config.ts";
import { createDriver } from "../../src/bay/bootstrap.ts";
import type { EnsureImagesOptions } from "../../scripts/ship-images.ts";
import { checkImages } from "../../scripts/lib/start-checks.ts";
import { freePort } from "../support/free-port.ts";

const ROOT = join(import.meta.dir, "../..");
const dirs: string[] = [];
const instances: string[] = [];
const running: Bun.Subprocess[] = [];

interface Health {
  status: string;
  database: { ok: boolean };
  driver: { ok: boolean; error?: string };
  images: Array<{ profile: string; image: string; present: boolean; build_command?: string }>;
  runtimes: Array<{ profile: string; available: boolean }>;
}

/** Runs `bun run start` until /health answers; returns the health body and the script's output so far. */
async function startBay(extraEnv: Record<string, string>, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "bay-start-"));
  dirs.push(dir);
  const instanceId = `test-start-${crypto.randomUUID().slice(0, 8)}`;
  instances.push(instanceId);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("BAY_")) env[k] = v;
  Object.assign(env, {
    BAY_DB_URL: `file:${join(dir, "bay.db")}`,
    BAY_HOST: "127.0.0.1",
    BAY_PORT: String(port),
    BAY_AUTH_MODE: "anonymous",
    BAY_INSTANCE_ID: instanceId,
    BAY_SKIP_IMAGE_BUILD: "1",
    ...extraEnv,
  });
  const proc = Bun.spawn(["bun", "run", "start"], { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  running.push(proc);
  let output = "";
  const drained = Promise.all(
    [proc.stdout, proc.stderr].map(async (s) => {
      const decoder = new TextDecoder();
      const reader = s.getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) output += decoder.decode(r.value, { stream: true });
    }),
  ).then(() => {});
  /** The output once it contains `text` (polled, bounded): lines may still be in the pipe when /health answers. */
  const outputWith = async (text: string, ms = 10_000): Promise<string> => {
    const deadline = Date.now() + ms;
    while (!output.includes(text) && Date.now() < deadline) {
      if (proc.exitCode !== null) {
        await drained;
        break;
      }
      await Bun.sleep(25);
    }
    return output;
  };
  const started = performance.now();
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`bun run start exited with ${proc.exitCode}:\n${output}`);
    const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
    if (res?.status === 200) {
      const health = (await res.json()) as Health;
      return { proc, base, health, output: () => output, outputWith, drained, startMs: performance.now() - started };
    }
    if (Date.now() > deadline) throw new Error(`bun run start did not answer /health within 20 s:\n${output}`);
    await Bun.sleep(50);
  }
}

async function stop(proc: Bun.Subprocess): Promise<number | null> {
  if (proc.exitCode !== null) return proc.exitCode;
  proc.kill("SIGTERM");
  const code = await Promise.race([proc.exited, Bun.sleep(5000).then(() => null)]);
  if (code === null) proc.kill("SIGKILL");
  return code;
}

afterAll(async () => {
  for (const p of running) await stop(p);
  const driver = createDriver(configSchema.parse({}));
  for (const id of instances) {
    for (const c of await driver.listContainers({ instance_id: id }).catch(() => [])) await driver.destroyContainer(c.id).catch(() => {});
    for (const v of await driver.listVolumes({ instance_id: id }).catch(() => [])) await driver.removeVolume(v.name).catch(() => {});
  }
  await driver.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("bun run start (real engine)", () => {
  test("with the default profiles' images present it comes up healthy and stops on SIGTERM", async () => {
    const driver = createDriver(configSchema.parse({}));
    for (const image of ["bay-ship:latest", "bay-ship-data:latest"]) {
      if (!(await driver.imageExists(image))) throw new Error(`${image} is missing; run \`bun run image:build\` before this test`);
    }
    await driver.close();

    const bay = await startBay({});
    console.log(`bun run start: /health answered ${bay.startMs.toFixed(0)} ms after spawn`);
    expect(bay.health.database).toEqual({ ok: true });
    expect(bay.health.driver.ok).toBe(true);
    expect(bay.health.images.map((i) => [i.image, i.present])).toEqual([
      ["bay-ship:latest", true],
      ["bay-ship-data:latest", true],
      ["bay-ship:latest", true],
    ]);
    // python-gvisor's runsc is registered by scripts/prereqs.sh.
    expect(bay.health.runtimes.every((r) => r.available)).toBe(true);
    expect(bay.health.status).toBe("healthy");
    expect(await bay.outputWith("image bay-ship:latest (profile python-default, python-gvisor): present")).toContain(
      "image bay-ship:latest (profile python-default, python-gvisor): present",
    );
    expect(await stop(bay.proc)).toBe(0);
  });

  test("a missing profile image is reported, Bay starts anyway and /health lists it with its build command", async () => {
    const missing = `bay-missing-${crypto.randomUUID().slice(0, 8)}:latest`;
    const config = [
      "profiles:",
      "  - id: python-default",
      "    image: bay-ship:latest",
      "  - id: custom",
      `    image: ${missing}`,
      "",
    ].join("\n");
    const dir = mkdtempSync(join(tmpdir(), "bay-start-cfg-"));
    dirs.push(dir);
    writeFileSync(join(dir, "bay.yaml"), config);
    const bay = await startBay({ BAY_CONFIG: join(dir, "bay.yaml") });
    expect(bay.health.status).toBe("degraded");
    expect(bay.health.database.ok).toBe(true);
    expect(bay.health.images).toContainEqual({ profile: "custom", image: missing, present: false, build_command: "bun run image:build" });
    expect(bay.health.images).toContainEqual({ profile: "python-default", image: "bay-ship:latest", present: true });
    expect(await bay.outputWith(`image ${missing} (profile custom): MISSING`)).toContain(`image ${missing} (profile custom): MISSING`);
    expect(await stop(bay.proc)).toBe(0);
  });

  test("with Docker unreachable it prints the images to build and still starts", async () => {
    const bay = await startBay({ DOCKER_HOST: `unix://${join(tmpdir(), `no-docker-${crypto.randomUUID()}.sock`)}` });
    expect(bay.health.status).toBe("degraded");
    expect(bay.health.database.ok).toBe(true);
    expect(bay.health.driver.ok).toBe(false);
    const out = await bay.outputWith("bay-ship-data:latest (profile python-data): bun run image:build --only data");
    expect(out).toContain("Docker engine unreachable");
    expect(out).toContain("bay-ship:latest (profile python-default, python-gvisor): bun run image:build --only ship");
    expect(out).toContain("bay-ship-data:latest (profile python-data): bun run image:build --only data");
    expect(await stop(bay.proc)).toBe(0);
  });
});

describe("start pre-flight (fake engine)", () => {
  const config = configSchema.parse({
    profiles: [
      { id: "python-default", image: "bay-ship:latest" },
      { id: "python-small", image: "bay-ship" },
      { id: "python-data", image: "bay-ship-data:latest" },
      { id: "custom", image: "example/custom:1" },
    ],
  });
  const engine = (present: string[], reachable = true) => ({
    ping: async () => {
      if (!reachable) throw new Error("connect ENOENT /var/run/docker.sock");
    },
    imageExists: async (image: string) => present.includes(image),
    close: async () => {},
  });

  test("builds only Bay's missing images, once per image, and reports foreign ones", async () => {
    const calls: EnsureImagesOptions[] = [];
    const lines: string[] = [];
    const outcome = await checkImages(config, {
      log: (l) => lines.push(l),
      driver: engine(["bay-ship-data:latest"]),
      ensure: async (opts) => {
        calls.push(opts);
        opts.log?.("building bay-ship:latest (target ship)");
        return { baseImage: "debian:bookworm-slim", images: [] };
      },
    });
    expect(calls.map((c) => c.only)).toEqual([["ship"]]);
    expect(outcome.engine).toBe("ok");
    if (outcome.engine !== "ok") return;
    expect(outcome.built.map((i) => [i.image, i.profiles])).toEqual([
      ["bay-ship:latest", ["python-default"]],
      ["bay-ship", ["python-small"]],
    ]);
    expect(outcome.plan.foreign.map((i) => i.image)).toEqual(["example/custom:1"]);
    expect(lines.join("\n")).toContain("image:build: building bay-ship:latest (target ship)");
    expect(lines.join("\n")).toContain("example/custom:1 (profile custom): MISSING; Bay does not build it");
  });

  test("BAY_SKIP_IMAGE_BUILD reports the build command instead of building", async () => {
    const lines: string[] = [];
    let called = false;
    const outcome = await checkImages(config, {
      log: (l) => lines.push(l),
      skipBuild: true,
      driver: engine([]),
      ensure: async () => {
        called = true;
        return { baseImage: "", images: [] };
      },
    });
    expect(called).toBe(false);
    expect(outcome.engine === "ok" && outcome.built).toEqual([]);
    expect(lines.join("\n")).toContain(
      "bay-ship-data:latest (profile python-data): MISSING; build it with `bun run image:build --only data`",
    );
  });

  test("a failed build is reported, not thrown", async () => {
    const lines: string[] = [];
    const outcome = await checkImages(config, {
      log: (l) => lines.push(l),
      driver: engine([]),
      ensure: async () => {
        throw new Error("docker build bay-ship:latest failed (exit 1)");
      },
    });
    expect(outcome.engine === "ok" && outcome.buildError).toContain("failed (exit 1)");
    expect(lines.join("\n")).toContain("image build failed");
  });

  test("an unreachable engine is reported with every image's build command, without image checks", async () => {
    const lines: string[] = [];
    const outcome = await checkImages(config, { log: (l) => lines.push(l), driver: engine([], false) });
    expect(outcome.engine).toBe("unreachable");
    expect(lines.join("\n")).toContain("example/custom:1 (profile custom): not built by Bay");
  });
});
