/**
 * The binary's own tools, run from a directory that is not the repository:
 * `dist/bay images build` (Ship and its Dockerfile embedded in the binary)
 * builds both runtime images under this test's own BAY_SHIP_TAG, reusing the
 * engine's cached layers, and reuses them on a second run; a Bay served by the
 * same binary on that tag runs a sandbox driven by `dist/bay sandbox …`; and
 * `dist/bay doctor` reports each check with a fix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shipImages } from "../../src/bay/config.ts";
import { BINARY, ensureBinary, runBinary } from "./support/binary.ts";
import { docker, freePort, removeLabelledQuietly } from "./support/e2e.ts";

const TAG = `test-img-${crypto.randomUUID().slice(0, 8)}`;
const IMAGES = shipImages(TAG);
const INSTANCE_ID = `test-bintools-${crypto.randomUUID().slice(0, 8)}`;
let dir = "";
let server: Bun.Subprocess | null = null;

beforeAll(() => {
  ensureBinary();
  dir = mkdtempSync(join(tmpdir(), "bay-bintools-"));
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    process.kill(server.pid, "SIGTERM");
    await server.exited;
  }
  await removeLabelledQuietly({ "bay.instance_id": INSTANCE_ID });
  // Only this test's own tag: the images everyone else uses are never touched.
  for (const image of Object.values(IMAGES))
    await docker
      .getImage(image)
      .remove()
      .catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("--help lists every command", async () => {
  const r = await runBinary(["--help"], dir);
  expect(r.code).toBe(0);
  for (const c of ["serve", "keys", "images build", "doctor", "sandbox", "mcp", "version"]) expect(r.stdout).toContain(c);
  const { version } = await import("../../package.json");
  expect((await runBinary(["--version"], dir)).stdout.trim()).toBe(`bay ${version}`);
});

describe("images build from the binary alone", () => {
  test("builds both images with its own tag, step by step, reusing cached layers; the raw output is in the log", async () => {
    const logFile = join(dir, "build.log");
    const r = await runBinary(["images", "build", "--log", logFile], dir, { BAY_SHIP_TAG: TAG });
    if (r.code !== 0) throw new Error(`images build failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toContain("from the Ship embedded in this binary");
    expect(r.stdout).toContain(`raw output: ${logFile}`);
    for (const image of Object.values(IMAGES)) {
      expect(r.stdout).toMatch(new RegExp(`^\\[\\s*[\\d.]+m?s\\] built ${image.replace(/[.:-]/g, "\\$&")} in `, "m"));
      const info = await docker.getImage(image).inspect();
      expect(info.Config.Labels?.["bay.ship.inputs-hash"]).toMatch(/^[0-9a-f]{32}$/);
    }
    // The package layers came from the engine's cache: only Ship's own layers were built.
    expect(r.stdout).toMatch(/RUN apt-get update .* {2}cached$/m);
    const raw = readFileSync(logFile, "utf8");
    expect(raw).toContain("Step 1/");
    expect(raw).toContain("Using cache");
    // The concise output is one line per step, not the engine's chatter.
    expect(r.stdout).not.toContain("---> ");
  }, 300_000);

  test("a second run finds both up to date and builds nothing", async () => {
    const r = await runBinary(["images", "build"], dir, { BAY_SHIP_TAG: TAG });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${IMAGES.ship}: up to date`);
    expect(r.stdout).toContain(`${IMAGES.data}: up to date`);
    expect(r.stdout).not.toContain("building ");
  }, 60_000);

  test("bad usage exits 2 with the usage", async () => {
    const r = await runBinary(["images", "build", "--only", "everything"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--only must be ship or data");
  });
});

describe("a sandbox on the built image, driven by `bay sandbox`", () => {
  let url = "";
  beforeAll(async () => {
    const port = freePort();
    url = `http://127.0.0.1:${port}`;
    server = Bun.spawn([BINARY, "serve"], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        BAY_PORT: String(port),
        BAY_DB_URL: `file:${join(dir, "bay.db")}`,
        BAY_AUTH_MODE: "anonymous",
        BAY_INSTANCE_ID: INSTANCE_ID,
        BAY_SHIP_TAG: TAG,
        BAY_LOG_LEVEL: "warn",
      },
      stdout: "ignore",
      stderr: "ignore",
    });
    const deadline = Date.now() + 20_000;
    while (
      !(await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (server.exitCode !== null || Date.now() > deadline) throw new Error("dist/bay serve did not answer /health");
      await Bun.sleep(100);
    }
  });

  const bay = (args: string[], stdin?: string) => runBinary(["sandbox", ...args], dir, { BAY_URL: url, BAY_OWNER: "cli-user" }, stdin);

  test("create, exec (shell and Python), ls, rm", async () => {
    const created = await bay(["create"]);
    expect(created.code).toBe(0);
    const id = created.stdout.trim();
    expect(id).toMatch(/^sandbox-[0-9a-z]+$/);

    const hello = await bay(["exec", id, "--", "echo", "hello;", "echo", "oops", ">&2;", "exit", "3"]);
    expect(hello).toEqual({ code: 3, stdout: "hello\n", stderr: "oops\n" });
    expect(await bay(["exec", id, "--python", "print(6 * 7)"])).toEqual({ code: 0, stdout: "42\n", stderr: "" });
    const fromStdin = await bay(["exec", id, "--python", "-"], "import sys\nprint(sys.version_info[0])\n1/0\n");
    expect(fromStdin.code).toBe(1);
    expect(fromStdin.stdout).toBe("3\n");
    expect(fromStdin.stderr).toContain("ZeroDivisionError");

    // The container runs the image this test built.
    const containers = await docker.listContainers({ filters: { label: [`bay.instance_id=${INSTANCE_ID}`, `bay.sandbox_id=${id}`] } });
    expect(containers.map((c) => c.Image)).toEqual([IMAGES.ship]);

    const stats = await bay(["stats", id]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(
      new RegExp(`^ID\\s+RUNTIME\\s+CPU\\s+MEMORY\\s+DISK\n${id}\\s+running\\s+[0-9.]+% of 1\\s+[0-9.]+ MiB / 1024\\.0 MiB`),
    );
    const statsJson = await bay(["stats", id, "--json"]);
    expect(JSON.parse(statsJson.stdout)).toEqual([expect.objectContaining({ running: true, cpu_count: 1 })]);
    const unknown = await bay(["stats", "sandbox-nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("not_found");

    const listed = await bay(["ls"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+ready\\s+python-default`, "m"));
    expect(await bay(["rm", id])).toEqual({ code: 0, stdout: `deleted ${id}\n`, stderr: "" });
    expect((await bay(["ls"])).stderr).toBe("no sandboxes\n");
    const again = await bay(["rm", id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("not_found");
  }, 120_000);

  test("an unreachable Bay is an error naming the URL, exit 1", async () => {
    const r = await runBinary(["sandbox", "ls", "--url", `http://127.0.0.1:${freePort()}`], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot reach Bay at http://127.0.0.1:");
  });

  describe("doctor", () => {
    test("all checks pass on this machine with the test's images", async () => {
      const r = await runBinary(["doctor"], dir, { BAY_SHIP_TAG: TAG, BAY_DB_URL: `file:${join(dir, "doctor.db")}`, BAY_PORT: "0" });
      expect(r.stdout).toContain("all checks passed");
      expect(r.code).toBe(0);
      for (const name of ["engine", "cgroups", "images", "database", "network rules", "port", "disk", "file watches"]) {
        expect(r.stdout).toMatch(new RegExp(`^ok {4}${name} `, "m"));
      }
      expect(r.stdout).toContain(IMAGES.ship);
    }, 60_000);

    test("each problem is reported with its fix: no engine, a port held by a running Bay, a missing image", async () => {
      const r = await runBinary(["doctor", "--json"], dir, {
        DOCKER_HOST: `unix://${join(dir, "no-such.sock")}`,
        BAY_PORT: new URL(url).port,
        BAY_DB_URL: `file:${join(dir, "bay.db")}`,
      });
      expect(r.code).toBe(1);
      const report = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; detail: string; fix?: string }> };
      const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
      expect(report.ok).toBe(false);
      expect(byName.engine).toMatchObject({ status: "fail" });
      expect(byName.engine!.fix).toContain("start the engine");
      expect(byName.port).toMatchObject({ status: "warn" });
      expect(byName.port!.detail).toContain("taken by a running Bay");
      expect(byName.database).toMatchObject({ status: "ok" });
      expect(existsSync(join(dir, "no-such.sock"))).toBe(false);

      const missing = await runBinary(["doctor"], dir, { BAY_SHIP_TAG: `${TAG}-absent`, BAY_PORT: "0" });
      expect(missing.code).toBe(1);
      expect(missing.stdout).toMatch(/^FAIL {2}images .*bay-ship:test-img-\w+-absent/m);
      expect(missing.stdout).toContain("fix: `bay images build`");
    }, 60_000);
  });
});
