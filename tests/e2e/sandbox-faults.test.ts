/**
 * Faults on real Docker: a runtime that exits at once, one that answers /health
 * but has no valid /meta, an engine that is not there, and a container killed
 * from outside. Every failure must come back in the one error model and leave
 * no container behind; data in /workspace must survive.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { ECHO_IMAGE, ECHO_PORT, ensureEchoImage } from "./support/docker-fixtures.ts";
import {
  BASE_IMAGE,
  containersOf,
  docker,
  ensureExitImage,
  EXIT_IMAGE,
  profiles,
  py,
  requireShipImages,
  withSandbox,
} from "./support/e2e.ts";
import { SHIP_IMAGE } from "../support/images.ts";

let t: TestBay;

beforeAll(async () => {
  await requireShipImages([BASE_IMAGE, SHIP_IMAGE]);
  await ensureEchoImage(docker);
  await ensureExitImage();
  t = await createTestBay({
    config: {
      driver: { ready_timeout: 15 },
      profiles: profiles(
        { id: "python-default", image: SHIP_IMAGE },
        { id: "exits-at-once", image: EXIT_IMAGE },
        { id: "bare-base", image: BASE_IMAGE },
        { id: "echo", image: ECHO_IMAGE, runtime_port: ECHO_PORT },
      ),
    },
  });
});
afterAll(async () => {
  await t?.close();
});

const sessionCount = async (sandboxId: string) =>
  Number(
    (await t.bay.deps.stores.db.execute({ sql: "SELECT COUNT(*) AS n FROM sessions WHERE sandbox_id = ?", args: [sandboxId] })).rows[0]!.n,
  );

function expectErrorModel(body: any): void {
  expect(typeof body.error.code).toBe("string");
  expect(typeof body.error.message).toBe("string");
  expect(typeof body.error.request_id).toBe("string");
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at /); // no stack traces
}

describe("faults (real Docker)", () => {
  test("runtime exits at once → 503 session_not_ready + Retry-After, no container left, failed + last_error, later call retries", async () => {
    await withSandbox(
      t,
      async (id) => {
        const r = await py(t, id, "1+1");
        expectErrorModel(r.body);
        expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 503, code: "session_not_ready" });
        expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
        expect(await containersOf(t, id)).toHaveLength(0);

        const sb = await t.json("GET", `/v1/sandboxes/${id}`);
        expect(sb.body.status).toBe("failed");
        expect(sb.body.last_error).toBeTruthy();
        expect(sb.body.idle_expires_at).toBeNull();

        // A later call tries again (a new session), and fails the same clean way.
        const again = await py(t, id, "1+1");
        expect(again.status).toBe(503);
        expect(again.body.error.code).toBe("session_not_ready");
        expect(await sessionCount(id)).toBe(2);
        expect(await containersOf(t, id)).toHaveLength(0);
      },
      "exits-at-once",
    );
  });

  test("an image with no command at all (the bare base image) → error model, failed + last_error, no container", async () => {
    await withSandbox(
      t,
      async (id) => {
        const r = await py(t, id, "1+1");
        expectErrorModel(r.body);
        expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 503, code: "session_not_ready" });
        expect(await containersOf(t, id)).toHaveLength(0);
        const sb = await t.json("GET", `/v1/sandboxes/${id}`);
        expect(sb.body.status).toBe("failed");
        expect(sb.body.last_error).toBeTruthy();
      },
      "bare-base",
    );
  });

  test("runtime answers /health but has no valid /meta → 502 ship_error, container removed", async () => {
    await withSandbox(
      t,
      async (id) => {
        const r = await py(t, id, "1+1");
        expectErrorModel(r.body);
        expect(r.status).toBe(502);
        expect(r.body.error.code).toBe("ship_error");
        expect(await containersOf(t, id)).toHaveLength(0);
        const sb = await t.json("GET", `/v1/sandboxes/${id}`);
        expect(sb.body.status).toBe("failed");
        expect(sb.body.last_error).toBeTruthy();
      },
      "echo",
    );
  });

  test("driver socket that does not exist → capability call 503 in the error model; /health driver ok:false", async () => {
    const broken = await createTestBay({ config: { driver: { socket_path: "/nonexistent/bay-e2e/docker.sock" } } });
    try {
      const created = await broken.json("POST", "/v1/sandboxes", { body: {} });
      expect(created.status).toBe(201);
      const r = await broken.json("POST", `/v1/sandboxes/${created.body.id}/python/exec`, { body: { code: "1+1" } });
      expect(r.status).toBe(503);
      expectErrorModel(r.body);
      expect(r.res.headers.get("retry-after")).toBeTruthy();
      const health = await broken.json("GET", "/health");
      expect(health.body.driver.ok).toBe(false);
      expect(health.body.status).not.toBe("healthy");
    } finally {
      await broken.close();
    }
  });

  test("container killed from outside → next python call runs on a new container, workspace intact", async () => {
    await withSandbox(t, async (id) => {
      const w = await py(t, id, "open('survivor.txt', 'w').write('still here')\nsecret = 1");
      expect(w.body.success).toBe(true);
      const [first] = await containersOf(t, id);
      expect(first).toBeDefined();

      await docker.getContainer(first!.id).kill();

      const r = await py(t, id, "open('survivor.txt').read()");
      expect(r.status).toBe(200);
      expect(r.body.success).toBe(true);
      expect(r.body.output).toContain("still here");

      const now = await containersOf(t, id);
      const running = now.filter((c) => c.state === "running");
      expect(running).toHaveLength(1);
      expect(running[0]!.id).not.toBe(first!.id);
      // The dead one is removed, not just left exited.
      expect(now.map((c) => c.id)).not.toContain(first!.id);
      expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");
    });
  });
});
