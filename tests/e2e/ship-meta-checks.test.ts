/**
 * Bay refuses a Ship that does not fit: a /meta reporting another API version,
 * capabilities or languages that do not cover the profile's, or another session than the one
 * it was started for, is 502 ship_error and the container is removed. The Ship is a tiny fake (`bay-test-meta`) whose /meta
 * answer is set by the profile's env.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { ensureMetaImage, META_IMAGE, META_PORT } from "./support/docker-fixtures.ts";
import { BASE_IMAGE, containersOf, docker, profiles, py, requireShipImages, withSandbox } from "./support/e2e.ts";

let t: TestBay;

beforeAll(async () => {
  await requireShipImages([BASE_IMAGE]);
  await ensureMetaImage(docker);
  t = await createTestBay({
    config: {
      driver: { ready_timeout: 15 },
      profiles: profiles(
        { id: "meta-ok", image: META_IMAGE, runtime_port: META_PORT, capabilities: ["python"], env: {} },
        { id: "meta-v2", image: META_IMAGE, runtime_port: META_PORT, env: { META_API_VERSION: "v2" } },
        {
          id: "meta-shell-only",
          image: META_IMAGE,
          runtime_port: META_PORT,
          capabilities: ["python", "shell"],
          env: { META_CAPABILITIES: "shell" },
        },
        { id: "meta-other-session", image: META_IMAGE, runtime_port: META_PORT, capabilities: ["python"], env: { META_SESSION: "other" } },
        // Every language by default; the runtime runs Python only.
        { id: "meta-python-only", image: META_IMAGE, runtime_port: META_PORT, capabilities: ["python"], env: { META_LANGUAGES: "python" } },
      ),
    },
  });
}, 120_000);

afterAll(async () => {
  await t?.close();
});

test("control: the fake Ship with a matching /meta becomes ready (the fixture itself is accepted)", async () => {
  await withSandbox(
    t,
    async (id) => {
      // The fake has no /ipython/exec, so the call itself fails; the start before it succeeded.
      await py(t, id, "1");
      expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");
      expect(await containersOf(t, id)).toHaveLength(1);
    },
    "meta-ok",
  );
}, 60_000);

test('/meta api_version "v2" → 502 ship_error (api_version_mismatch), container removed', async () => {
  await withSandbox(
    t,
    async (id) => {
      const r = await py(t, id, "1");
      expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 502, code: "ship_error" });
      expect(r.body.error.details.reason).toBe("api_version_mismatch");
      expect(r.body.error.message).toContain("v2");
      expect(await containersOf(t, id)).toHaveLength(0);
    },
    "meta-v2",
  );
}, 60_000);

test("/meta capabilities not covering the profile's → 502 ship_error (capability_mismatch), container removed", async () => {
  await withSandbox(
    t,
    async (id) => {
      const r = await py(t, id, "1");
      expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 502, code: "ship_error" });
      expect(r.body.error.details.reason).toBe("capability_mismatch");
      expect(r.body.error.details.missing).toEqual(["python"]);
      expect(await containersOf(t, id)).toHaveLength(0);
    },
    "meta-shell-only",
  );
}, 60_000);

test("/meta naming another session than the one started → 502 ship_error (session_mismatch), container removed", async () => {
  await withSandbox(
    t,
    async (id) => {
      const r = await py(t, id, "1");
      expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 502, code: "ship_error" });
      expect(r.body.error.details.reason).toBe("session_mismatch");
      expect(await containersOf(t, id)).toHaveLength(0);
    },
    "meta-other-session",
  );
}, 60_000);

test("/meta languages not covering the profile's → 502 ship_error (capability_mismatch, missing_languages), container removed", async () => {
  await withSandbox(
    t,
    async (id) => {
      const r = await py(t, id, "1");
      expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 502, code: "ship_error" });
      expect(r.body.error.details).toMatchObject({ reason: "capability_mismatch", missing_languages: ["javascript", "typescript"] });
      expect(await containersOf(t, id)).toHaveLength(0);
    },
    "meta-python-only",
  );
}, 60_000);
