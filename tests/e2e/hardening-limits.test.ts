/**
 * Limits that Ship enforces, verified end to end through Bay on real Docker:
 * output truncation (`truncated: true`), the cap on background processes (429
 * quota_exceeded), and symlinks in /workspace that point outside it (400
 * invalid_path on read, write, download, list and delete). The profile sets
 * Ship's caps through its env (SHIP_MAX_OUTPUT_BYTES, SHIP_MAX_BACKGROUND).
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { profiles, py, sh, uploadForm, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import { SHIP_IMAGE } from "../support/images.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), {
  config: {
    profiles: profiles({
      id: "capped",
      image: SHIP_IMAGE,
      memory_mb: 256,
      env: { SHIP_MAX_OUTPUT_BYTES: "4096", SHIP_MAX_BACKGROUND: "2" },
    }),
  },
});

describe("Ship limits through Bay", () => {
  test("shell output past the cap comes back truncated: true; python output is capped too", async () => {
    await withSandbox(
      t,
      async (id) => {
        const r = await sh(t, id, { command: "head -c 100000 /dev/zero | tr '\\0' a" });
        expect(r.status).toBe(200);
        expect(r.body.truncated).toBe(true);
        expect(r.body.output.length).toBeLessThanOrEqual(4096);
        expect(r.body.output.length).toBeGreaterThan(1000);
        const small = await sh(t, id, { command: "echo fits" });
        expect(small.body.truncated).toBe(false);
        const p = await py(t, id, "print('b' * 100000)");
        expect(p.status).toBe(200);
        expect(p.body.output.length).toBeLessThanOrEqual(4096 + 256);
      },
      "capped",
    );
  });

  test("background processes past SHIP_MAX_BACKGROUND → 429 quota_exceeded", async () => {
    await withSandbox(
      t,
      async (id) => {
        for (let i = 0; i < 2; i++) {
          const r = await sh(t, id, { command: "sleep 60", background: true });
          expect(r.status).toBe(200);
          expect(r.body.process_id).toBeTruthy();
        }
        const over = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "sleep 60", background: true } });
        expect(over.status).toBe(429);
        expect(over.body.error.code).toBe("quota_exceeded");
        expect(over.body.error.request_id).toBe(over.res.headers.get("x-request-id")!);
        // Foreground commands are not counted.
        expect((await sh(t, id, { command: "echo fg" })).body.output.trim()).toBe("fg");
      },
      "capped",
    );
  });

  test("a symlink to /etc inside /workspace: read, write, download, list, delete, upload → 400 invalid_path", async () => {
    await withSandbox(
      t,
      async (id) => {
        const mk = await sh(t, id, { command: "ln -s /etc /workspace/etc-link && ln -s /etc/passwd /workspace/pw && ls -l /workspace" });
        expect(mk.body.exit_code).toBe(0);
        const base = `/v1/sandboxes/${id}/filesystem`;
        const calls = [
          () => t.json("GET", `${base}/files?path=etc-link/passwd`),
          () => t.json("GET", `${base}/files?path=pw`),
          () => t.json("PUT", `${base}/files`, { body: { path: "etc-link/evil", content: "x" } }),
          () => t.json("PUT", `${base}/files`, { body: { path: "pw", content: "x" } }),
          () => t.json("GET", `${base}/download?path=etc-link/passwd`),
          () => t.json("GET", `${base}/directories?path=etc-link`),
          () => t.json("DELETE", `${base}/files?path=etc-link/hostname`),
          () => t.json("POST", `${base}/upload`, { body: uploadForm("etc-link/up.bin", "x") }),
        ];
        for (const call of calls) {
          const r = await call();
          expect(r.status).toBe(400);
          expect(r.body.error.code).toBe("invalid_path");
        }
        // Listing the workspace root still works and shows the links as entries.
        const list = await t.json("GET", `${base}/directories?path=.`);
        expect(list.status).toBe(200);
        expect(list.body.entries.map((e: { name: string }) => e.name)).toContain("etc-link");
      },
      "capped",
    );
  });
});
