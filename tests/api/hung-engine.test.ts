/**
 * A container engine that accepts connections and never answers (a hung dockerd):
 * every Docker call runs under `driver.call_timeout`, so requests end with a 503
 * in the error model instead of hanging, and Bay keeps serving.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import { BayError } from "../../src/bay/errors.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";

const dir = mkdtempSync(join(tmpdir(), "bay-hung-engine-"));
const socketPath = join(dir, "docker.sock");
const sockets = new Set<Socket>();
let requests = 0;
let server: Server;

beforeAll(async () => {
  // Reads whatever is sent and never writes a byte back.
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on("data", () => requests++);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

async function timedOut(call: Promise<unknown>): Promise<BayError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BayError);
  return err as BayError;
}

describe("the Docker driver against a hung engine", () => {
  const driver = new DockerDriver({ socketPath, connectMode: "host_port", defaultPidsLimit: 64, callTimeoutMs: 300 });

  test("every lifecycle call gives up at its deadline with 503 driver_unavailable, reason engine_timeout", async () => {
    const calls: Array<[string, Promise<unknown>]> = [
      ["ping", driver.ping()],
      ["imageExists", driver.imageExists("bay-ship:latest")],
      ["runtimes", driver.runtimes()],
      ["containerStatus", driver.containerStatus("abc")],
      ["destroyContainer", driver.destroyContainer("abc")],
      ["stopContainer", driver.stopContainer("abc", 0)],
      ["listContainers", driver.listContainers({})],
      ["createVolume", driver.createVolume("bay-hung-test", { kind: "workspace" } as never)],
      ["removeVolume", driver.removeVolume("bay-hung-test")],
      ["listVolumes", driver.listVolumes({})],
      ["startContainer", driver.startContainer("abc", 8123, "credentials")],
    ];
    for (const [name, call] of calls) {
      const err = await timedOut(call);
      expect({ name, code: err.code, reason: (err.details as { reason?: string }).reason }).toEqual({
        name,
        code: "driver_unavailable",
        reason: "engine_timeout",
      });
      expect(err.retryAfter).toBe(5);
    }
    // The calls did reach the engine: they timed out, they were not refused.
    expect(requests).toBeGreaterThanOrEqual(calls.length);
  });
});

describe("Bay on a hung engine", () => {
  let t: TestBay;
  beforeAll(async () => {
    t = await createTestBay({ config: { driver: { socket_path: socketPath, call_timeout: 0.5 } } });
  });
  afterAll(async () => {
    await t.bay.reaper.stop();
    await t.bay.close();
  });

  test("an exec that has to start a container answers 503 engine_timeout with Retry-After, and Bay keeps serving", async () => {
    const created = await t.json("POST", "/v1/sandboxes", { body: {} });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const exec = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "true" } });
    expect(exec.status).toBe(503);
    expect(exec.body.error).toMatchObject({ code: "driver_unavailable", details: { reason: "engine_timeout", timeout_ms: 500 } });
    expect(exec.body.error.message).not.toContain("sock");
    expect(exec.res.headers.get("retry-after")).toBe("5");
    // Nothing half-made is left behind in Bay's state: the sandbox is there, without a session.
    const after = await t.json("GET", `/v1/sandboxes/${id}`);
    expect(after.status).toBe(200);
    expect(after.body.status).not.toBe("ready");
    const health = await t.json("GET", "/health");
    expect([200, 503]).toContain(health.status);
  });
});
