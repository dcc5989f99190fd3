/**
 * The call channel end to end, on a real Docker engine with the real Ship image:
 * a running sandbox's calls move onto one WebSocket to its Ship (the
 * bay_ship_channels_open gauge), the kernel's state carries across the move from
 * HTTP to the channel, a stop closes the channel with its container and the next
 * call opens a new one, and a runtime killed under a call on the channel fails
 * that call as a lost runtime, after which the sandbox starts afresh.
 */
import { expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { pollUntil } from "../support/harness.ts";
import { containersOf, docker, py, sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

async function channelsOpen(): Promise<number> {
  const res = await t.call("GET", "/metrics");
  const m = /^bay_ship_channels_open (\d+)$/m.exec(await res.text());
  if (!m) throw new Error("no bay_ship_channels_open in /metrics");
  return Number(m[1]);
}

test("a sandbox's calls move onto its channel with the kernel's state intact; a stop closes it, the next call opens another", async () => {
  const before = await channelsOpen();
  await withSandbox(t, async (id) => {
    expect((await py(t, id, "x = 20")).status).toBe(200);
    await pollUntil(channelsOpen, (n) => n === before + 1, 15_000, "the sandbox's channel to open");
    for (let i = 0; i < 5; i++) {
      const r = await py(t, id, "x += 1\nx");
      expect(r.status).toBe(200);
      expect(r.body.output).toBe(`${21 + i}\n`);
    }
    const bad = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "1", timeout: -1 } });
    expect(bad.status).toBe(400);
    const err = await py(t, id, "1/0");
    expect(err.status).toBe(200);
    expect(err.body.success).toBe(false);
    expect(err.body.error).toContain("ZeroDivisionError");

    expect((await t.json("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
    await pollUntil(channelsOpen, (n) => n === before, 15_000, "the stopped sandbox's channel to close");
    const again = await py(t, id, "'x' in globals()");
    expect(again.body.output).toBe("False\n");
    await pollUntil(channelsOpen, (n) => n === before + 1, 15_000, "a new channel to the new runtime");
  });
  await pollUntil(channelsOpen, (n) => n === before, 15_000, "the deleted sandbox's channel to close");
});

test("a runtime killed under a call on its channel fails that call as a lost runtime; the next call starts afresh", async () => {
  await withSandbox(t, async (id) => {
    await py(t, id, "import time");
    await pollUntil(channelsOpen, (n) => n >= 1, 15_000, "the sandbox's channel to open");
    await py(t, id, "1");
    const running = py(t, id, "time.sleep(60)", 120);
    await Bun.sleep(500);
    const [container] = await containersOf(t, id);
    await docker.getContainer(container!.id).kill();
    const r = await running;
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe("ship_error");
    expect(["connection_lost", "unreachable"]).toContain(r.body.error.details.reason);
    const next = await py(t, id, "1 + 1", 60);
    expect(next.status).toBe(200);
    expect(next.body.output).toBe("2\n");
  });
});

test("many calls at once on one channel each get their own answer, whatever order Ship finishes them in", async () => {
  await withSandbox(t, async (id) => {
    await py(t, id, "1");
    await pollUntil(channelsOpen, (n) => n >= 1, 15_000, "the sandbox's channel to open");
    // Shell commands finishing in reverse order of their start, beside Python cells queued on the kernel.
    const shells = Array.from({ length: 12 }, (_, i) => sh(t, id, { command: `sleep 0.${12 - i}; echo shell-${i}` }));
    const cells = Array.from({ length: 6 }, (_, i) => py(t, id, `"cell-${i}"`));
    const answers = await Promise.all([...shells, ...cells]);
    expect(answers.map((r) => r.body.output)).toEqual([
      ...Array.from({ length: 12 }, (_, i) => `shell-${i}\n`),
      ...Array.from({ length: 6 }, (_, i) => `'cell-${i}'\n`),
    ]);
  });
});
