/**
 * Idle reclaim and open interactive work, on real Docker with a 4 s idle
 * timeout and the reaper beating every 0.5 s: an open terminal and an open file
 * watch keep the sandbox from being reclaimed long past its idle timeout (and
 * past the cover of the calls that opened them); once the terminal's client
 * vanished and the watch was closed, neither counts, and the sandbox is
 * reclaimed like any idle one.
 */
import { expect, test } from "bun:test";
import { configSchema } from "../../src/bay/config.ts";
import { DEADLINES } from "../../src/bay/runtime/ship-client.ts";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { RawWebSocket } from "../support/raw-websocket.ts";
import { SseReader } from "../support/sse.ts";
import { containersOf, newSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";

const IDLE_S = 4;
const shortIdle = configSchema.parse({ profiles: [{ id: "python-default", image: SHIP_IMAGE, idle_timeout: IDLE_S }] }).profiles;

let t: TestBay;
let served: ServedBay;
servedE2eBay(
  (bay, s) => {
    t = bay;
    served = s;
  },
  { config: { profiles: shortIdle, lifecycle: { reaper_interval: 0.5 } } },
);

const sandbox = async (id: string) => (await t.json("GET", `/v1/sandboxes/${id}`)).body;

test("an open terminal and an open watch keep the sandbox from idle reclaim; gone, they stop counting", async () => {
  const id = await newSandbox(t);
  try {
    const term = await RawWebSocket.open(Number(served.host.split(":")[1]), `/v1/sandboxes/${id}/terminal`, { "x-owner": "alice" });
    term.type("echo up\n");
    await term.waitFor(/up\r\n/, 60_000);
    const res = await t.call("GET", `/v1/sandboxes/${id}/filesystem/watch?path=.`);
    expect(res.status).toBe(200);
    const watch = new SseReader(res);
    expect((await watch.next())?.event).toBe("ready");
    const opened = Date.now();
    t.bay.reaper.start();

    // Long past the idle timeout and the opening calls' own cover, with the reaper beating all along.
    const quiet = DEADLINES.stream + 5_000 + 3 * IDLE_S * 1000;
    await pollUntil(
      () => Date.now(),
      (now) => now > opened + quiet,
      quiet + 10_000,
      "the quiet period",
    );
    await t.bay.reaper.runOnce();
    const during = await sandbox(id);
    expect(during.status).toBe("ready");
    expect(Date.parse(during.idle_expires_at)).toBeGreaterThan(Date.now());
    term.type("echo still-here\n");
    await term.waitFor(/still-here\r\n/, 30_000);

    // The terminal's client vanishes; the watch alone still holds the sandbox.
    term.vanish();
    await term.ended;
    const vanished = Date.now();
    await pollUntil(
      () => Date.now(),
      (now) => now > vanished + 3 * IDLE_S * 1000,
      3 * IDLE_S * 1000 + 10_000,
      "a few idle timeouts",
    );
    await t.bay.reaper.runOnce();
    expect((await sandbox(id)).status).toBe("ready");

    // The watch closes too: nothing holds the sandbox, and the reaper reclaims it.
    await watch.cancel();
    await pollUntil(
      async () => (await sandbox(id)).status,
      (s) => s === "idle",
      60_000,
      "idle reclaim",
    );
    await pollUntil(
      () => containersOf(t, id),
      (l) => l.length === 0,
      30_000,
      "the container removed",
    );
  } finally {
    await t.call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
  }
}, 180_000);
