/**
 * Downloads served over a real server, whose body Bun streams from the Ship to
 * the client without passing through JavaScript (open-streams.ts coverSentBody):
 * the call's cover must still end when the transfer ends (whole or abandoned by
 * its client), and a session that stops under a transfer must make the client's
 * read fail instead of ending short as if the file were complete. Real Docker,
 * a 4 s idle timeout and the reaper beating every 0.5 s.
 */
import { expect, test } from "bun:test";
import { configSchema } from "../../src/bay/config.ts";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { newSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";

const IDLE_S = 4;
const MiB = 1024 * 1024;
const BIG = 64 * MiB;
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

const owner = { "x-owner": "alice" };
const status = async (id: string) => (await t.json("GET", `/v1/sandboxes/${id}`)).body.status as string;

/** A file of `bytes` zero bytes in the sandbox's workspace. */
async function makeFile(id: string, path: string, bytes: number): Promise<void> {
  const r = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: `head -c ${bytes} /dev/zero > ${path}` } });
  expect(r.status).toBe(200);
  expect(r.body.exit_code).toBe(0);
}

const download = (id: string, path: string, signal?: AbortSignal) =>
  fetch(`${served.http}/v1/sandboxes/${id}/filesystem/download?path=${path}`, { headers: owner, signal });

test("a download ended whole, or abandoned by its client, stops covering its session: the sandbox is reclaimed when idle", async () => {
  const id = await newSandbox(t);
  try {
    await makeFile(id, "whole.bin", 4 * MiB);
    await makeFile(id, "big.bin", BIG);
    // Read whole: every byte, then the body ends cleanly.
    const whole = await download(id, "whole.bin");
    expect(whole.status).toBe(200);
    expect((await whole.arrayBuffer()).byteLength).toBe(4 * MiB);

    // Abandoned: the client goes away after the first bytes of a large file.
    const gone = new AbortController();
    const res = await download(id, "big.bin", gone.signal);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    gone.abort();
    await reader.read().catch(() => {});

    // A download's call cover runs for the file deadline (minutes): only its release lets the idle reaper in.
    t.bay.reaper.start();
    await pollUntil(
      () => status(id),
      (s) => s === "idle",
      60_000,
      "idle reclaim after the downloads",
    );
  } finally {
    await t.call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
  }
}, 180_000);

test("a download whose session is stopped under it fails at the client instead of ending short", async () => {
  const id = await newSandbox(t);
  try {
    await makeFile(id, "big.bin", BIG);
    const res = await download(id, "big.bin");
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let received = 0;
    const first = await reader.read();
    expect(first.done).toBe(false);
    received += first.value!.byteLength;
    // The client reads nothing more (the server's and the kernel's buffers fill up), and the sandbox is stopped.
    const stop = await t.json("POST", `/v1/sandboxes/${id}/stop`);
    expect(stop.status).toBe(200);
    let failed = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
      }
    } catch {
      failed = true;
    }
    expect(received).toBeLessThan(BIG);
    expect(failed).toBe(true);
  } finally {
    await t.call("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
  }
}, 180_000);
