/**
 * Terminal input a stalled runtime does not take, on a Bay subprocess (its own RSS
 * measured) and the real image. User code runs as Ship's uid, so a tenant can stop
 * Ship (SIGSTOP) from its own terminal and then push input as fast as its link
 * allows. Bay must not queue that input for the Ship's connection without end (one
 * tenant would take every tenant's Bay down): past a mark it refuses further input
 * with one `error` message, its memory stays flat, and once Ship runs again the
 * terminal goes on.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { frame, RawWebSocket } from "../support/raw-websocket.ts";
import { type BayProcess, docker, requireShipImages, rssBytes, spawnBay } from "./support/e2e.ts";

const MiB = 1024 * 1024;
const OWNER = "sec-terminal-input";
const headers = { "x-owner": OWNER, "content-type": "application/json" };
let bay: BayProcess;
let id: string;

beforeAll(async () => {
  await requireShipImages();
  bay = await spawnBay();
  const r = await fetch(`${bay.url}/v1/sandboxes`, { method: "POST", headers, body: "{}" });
  id = ((await r.json()) as { id: string }).id;
}, 60_000);
afterAll(async () => {
  await fetch(`${bay.url}/v1/sandboxes/${id}`, { method: "DELETE", headers }).catch(() => {});
  await bay?.close();
});

/** Runs a command in the sandbox's container (as its user) without going through Ship. */
async function inContainer(command: string): Promise<void> {
  const [info] = await docker.listContainers({ filters: { label: [`bay.sandbox_id=${id}`, `bay.instance_id=${bay.instanceId}`] } });
  if (!info) throw new Error(`no running container for ${id}`);
  const exec = await docker.getContainer(info.Id).exec({ Cmd: ["sh", "-c", command], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  await new Promise((resolve) => {
    stream.on("end", resolve);
    stream.resume();
  });
}

test("input for a runtime stopped from inside is refused past a mark, not queued in Bay; the terminal goes on once it runs", async () => {
  const port = Number(new URL(bay.url).port);
  const ws = await RawWebSocket.open(port, `/v1/sandboxes/${id}/terminal`, { "x-owner": OWNER });
  try {
    ws.type("echo re''ady\n");
    await ws.waitFor(/ready\r\n/, 60_000);
    // The tenant stops its own Ship (same uid) and floods: 384 frames of 1 MiB. (Resize
    // messages pass the same gate: tests/unit/terminal-bridge.test.ts.)
    ws.type("kill -STOP $(pgrep -x ship)\n");
    await Bun.sleep(1_000);
    const baseline = await rssBytes(bay.pid);
    let peak = baseline;
    const payload = frame(2, new Uint8Array(MiB - 64).fill(0x61));
    for (let i = 0; i < 384; i++) {
      await ws.write(payload);
      if (i % 16 === 15) peak = Math.max(peak, await rssBytes(bay.pid));
    }
    // A control message Bay answers at once: every frame before it was read.
    const answered = async () => {
      const before = ws.texts.length;
      await ws.write(frame(1, new TextEncoder().encode("not a control message")));
      const deadline = Date.now() + 60_000;
      while (!ws.texts.slice(before).some((t) => JSON.parse(t).error?.code === "validation_error") && Date.now() < deadline)
        await Bun.sleep(50);
    };
    await answered();
    peak = Math.max(peak, await rssBytes(bay.pid));
    const growth = peak - baseline;
    console.log(`384 MiB of input for a stopped Ship: Bay's RSS grew at most ${(growth / MiB).toFixed(1)} MiB`);
    // Queued, it grows by the input's size (before the fix: 260-275 MiB for 256 MiB sent). Refused,
    // only the garbage of the frames Bay read comes and goes (40-100 MiB on the loaded test machine).
    expect(growth).toBeLessThan(160 * MiB);

    // Refused with a message when refusing starts (again after the runtime took some), never one per frame.
    const refused = ws.texts.map((t) => JSON.parse(t)).filter((m) => m.type === "error" && m.error.code === "payload_too_large");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeLessThan(16);
    expect(refused[0].error.request_id).toBeString();
    expect(ws.closeFrame).toBeNull();

    // Ship runs again: the terminal still works and takes input again.
    await inContainer("kill -CONT $(pgrep -x ship)");
    ws.type("\x15echo back''again\n");
    await ws.waitFor(/backagain\r\n/, 60_000);
  } finally {
    ws.vanish();
  }
}, 300_000);
