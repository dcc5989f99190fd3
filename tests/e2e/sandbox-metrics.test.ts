/**
 * A sandbox's resource use on real Docker: the engine's CPU and memory readings
 * of a Ship that burns a CPU and holds 200 MiB, its page cache, and the workspace's disk use,
 * through GET /v1/sandboxes/{id}/metrics; a stopped sandbox reads as not running
 * and starts nothing.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { containersOf, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => {
  t = bay;
});
const MiB = 1024 * 1024;

describe("sandbox metrics on Docker", () => {
  test("CPU, memory and disk of a busy sandbox, then none once it is stopped", async () => {
    await withSandbox(t, async (id) => {
      const shell = (command: string, background = false) =>
        t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command, background } });
      expect((await shell("head -c 3000000 /dev/zero > three-mb.bin")).status).toBe(200);
      expect((await shell("exec python3 -c 'while True: pass'", true)).status).toBe(200);
      const held = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, {
        body: { code: "held = bytearray(200 * 1024 * 1024); len(held)" },
      });
      expect(held.body.output).toBe(`${200 * MiB}\n`);
      const m = await t.json("GET", `/v1/sandboxes/${id}/metrics`);
      expect(m.status).toBe(200);
      expect(m.body.running).toBe(true);
      // A busy loop on a one-CPU profile: well above idle however loaded the machine is.
      expect(m.body.cpu_used_pct).toBeGreaterThan(10);
      expect(m.body.cpu_used_pct).toBeLessThanOrEqual(100 * m.body.cpu_count + 5);
      expect(m.body.memory_used_bytes).toBeGreaterThan(200 * MiB);
      expect(m.body.memory_used_bytes).toBeLessThan(m.body.memory_limit_bytes);
      expect(m.body.memory_limit_bytes).toBe(1024 * MiB);
      expect(m.body.disk_used_bytes).toBeGreaterThanOrEqual(3_000_000);
      // The file just written is in the runtime's page cache (with what Python read to start).
      expect(m.body.memory_cache_bytes).toBeGreaterThanOrEqual(3_000_000);
      expect(m.body.memory_cache_bytes).toBeLessThan(m.body.memory_limit_bytes);

      expect((await t.json("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
      const stopped = await t.json("GET", `/v1/sandboxes/${id}/metrics`);
      expect(stopped.body).toMatchObject({ running: false, cpu_used_pct: 0, memory_used_bytes: 0, memory_cache_bytes: 0 });
      expect(await containersOf(t, id)).toEqual([]);
    });
  });
});
