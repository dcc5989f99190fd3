/**
 * Sandbox lifecycle on real Docker with the real Ship image: the minimal path,
 * stop, delete, concurrent first calls, and refusing a capability the profile lacks.
 * Each test creates and removes its own sandbox; the harness removes anything
 * labelled with its instance id afterwards.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { containersOf, dropSandbox, newSandbox, profiles, py, volumeExists, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import { SHIP_IMAGE } from "../support/images.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), {
  config: {
    profiles: profiles({ id: "python-default", image: SHIP_IMAGE }, { id: "files-only", image: SHIP_IMAGE, capabilities: ["filesystem"] }),
  },
});

describe("sandbox lifecycle (real Docker)", () => {
  test("minimal path: create → python 1+1 → '2'; idle → ready with idle_expires_at", async () => {
    await withSandbox(t, async (id) => {
      const before = await t.json("GET", `/v1/sandboxes/${id}`);
      expect(before.body.status).toBe("idle");
      expect(before.body.idle_expires_at).toBeNull();
      expect(await containersOf(t, id)).toHaveLength(0);

      const r = await py(t, id, "1+1");
      expect(r.status).toBe(200);
      expect(r.body.success).toBe(true);
      expect(r.body.error ?? "").toBe("");
      // The value of the last expression comes back like IPython's Out.
      expect(`${r.body.output}`.trim()).toBe("2");
      expect(r.res.headers.get("x-request-id")).toBeTruthy();

      const after = await t.json("GET", `/v1/sandboxes/${id}`);
      expect(after.body.status).toBe("ready");
      expect(Date.parse(after.body.idle_expires_at)).toBeGreaterThan(Date.now());
      const running = await containersOf(t, id);
      expect(running).toHaveLength(1);
      expect(running[0]!.state).toBe("running");
    });
  });

  test("stop: container goes, sandbox stays idle, workspace data survives; stop twice is fine", async () => {
    await withSandbox(t, async (id) => {
      const w = await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "keep/me.txt", content: "durable ✓" } });
      expect(w.status).toBe(200);
      expect(await containersOf(t, id)).toHaveLength(1);

      const s1 = await t.json("POST", `/v1/sandboxes/${id}/stop`);
      expect(s1.status).toBe(200);
      expect(s1.body.status).toBe("idle");
      expect(s1.body.idle_expires_at).toBeNull();
      expect(await containersOf(t, id)).toHaveLength(0);

      const s2 = await t.json("POST", `/v1/sandboxes/${id}/stop`);
      expect(s2.status).toBe(200);
      expect(s2.body.status).toBe("idle");

      const got = await t.json("GET", `/v1/sandboxes/${id}`);
      expect(got.status).toBe(200);
      expect(got.body.status).toBe("idle");

      // The next call starts a new session on the same workspace.
      const r = await t.json("GET", `/v1/sandboxes/${id}/filesystem/files?path=keep/me.txt`);
      expect(r.status).toBe(200);
      expect(r.body.content).toBe("durable ✓");
      expect(await containersOf(t, id)).toHaveLength(1);
      expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");
    });
  });

  test("delete: container and managed volume gone, then 404 for sandbox and workspace", async () => {
    const id = await newSandbox(t);
    try {
      const created = await t.json("GET", `/v1/sandboxes/${id}`);
      const wsId = created.body.workspace_id as string;
      expect((await py(t, id, "open('x.txt','w').write('x')")).status).toBe(200);
      const vols = await t.bay.driver.listVolumes({ sandbox_id: id });
      expect(vols).toHaveLength(1);
      const volume = vols[0]!.name;
      expect(await volumeExists(volume)).toBe(true);
      expect(await containersOf(t, id)).toHaveLength(1);

      const del = await t.call("DELETE", `/v1/sandboxes/${id}`);
      expect(del.status).toBe(204);

      expect(await containersOf(t, id)).toHaveLength(0);
      expect(await t.bay.driver.listVolumes({ sandbox_id: id })).toHaveLength(0);
      expect(await volumeExists(volume)).toBe(false);

      const get = await t.json("GET", `/v1/sandboxes/${id}`);
      expect(get.status).toBe(404);
      expect(get.body.error.code).toBe("not_found");
      const exec = await py(t, id, "1");
      expect(exec.status).toBe(404);
      expect(exec.body.error.code).toBe("not_found");
      const ws = await t.json("GET", `/v1/workspaces/${wsId}`);
      expect(ws.status).toBe(404);
      expect(ws.body.error.code).toBe("not_found");
      expect((await t.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(404);
    } finally {
      await dropSandbox(t, id);
    }
  });

  test("10 concurrent first calls on a cold sandbox all succeed on exactly one container", async () => {
    await withSandbox(t, async (id) => {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => py(t, id, `${i} * 2`)));
      for (const [i, r] of results.entries()) {
        expect(r.status).toBe(200);
        expect(r.body.success).toBe(true);
        expect(`${r.body.output}`.trim()).toBe(String(i * 2));
      }
      // Counted through Docker labels: every container ever made for this sandbox (all states).
      const containers = await containersOf(t, id);
      expect(containers).toHaveLength(1);
      expect(containers[0]!.state).toBe("running");
      const rs = await t.bay.deps.stores.db.execute({
        sql: "SELECT COUNT(*) AS n FROM sessions WHERE sandbox_id = ? AND status = 'ready'",
        args: [id],
      });
      expect(Number(rs.rows[0]!.n)).toBe(1);
    });
  });

  test("a capability the profile lacks → 400 capability_not_supported, no container started", async () => {
    await withSandbox(
      t,
      async (id) => {
        const r = await py(t, id, "1+1");
        expect(r.status).toBe(400);
        expect(r.body.error.code).toBe("capability_not_supported");
        expect(r.body.error.details.capabilities).toEqual(["filesystem"]);
        const s = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "true" } });
        expect(s.status).toBe(400);
        expect(s.body.error.code).toBe("capability_not_supported");
        expect(await containersOf(t, id)).toHaveLength(0);
        expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("idle");
      },
      "files-only",
    );
  });
});
