/**
 * Nothing piles up in Bay for a slow reader, on a Bay subprocess (its own RSS
 * measured) and the real image:
 * - a terminal client that stops reading its socket while the shell writes
 *   64 MB: Bay stops acknowledging, Ship stops the PTY, the writer waits (it
 *   gets no further than a few MB), Bay's memory stays flat; once the client
 *   reads again everything arrives, nothing dropped;
 * - a followed process output of 64 MB read to its end through Bay: Bay's RSS
 *   grows no more than for a small one, and every byte is either received or
 *   reported as dropped by the ring.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { pollUntil } from "../support/harness.ts";
import { RawWebSocket } from "../support/raw-websocket.ts";
import { SseReader } from "../support/sse.ts";
import { type BayProcess, requireShipImages, rssBytes, spawnBay } from "./support/e2e.ts";

const MiB = 1024 * 1024;
const OWNER = "mem-interactive";
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

const sh = async (command: string) => {
  const r = await fetch(`${bay.url}/v1/sandboxes/${id}/shell/exec`, { method: "POST", headers, body: JSON.stringify({ command }) });
  return (await r.json()) as { output: string; exit_code: number; process_id: string | null };
};

test("a terminal client that stops reading pauses the shell's output; Bay's memory stays flat; nothing is lost", async () => {
  const port = Number(new URL(bay.url).port);
  const ws = await RawWebSocket.open(port, `/v1/sandboxes/${id}/terminal`, { "x-owner": OWNER });
  ws.type("echo re''ady\n");
  await ws.waitFor(/ready\r\n/, 60_000);
  const baseline = await rssBytes(bay.pid);
  ws.pauseReading();
  // 640 blocks of 100 000 bytes from one process, each counted in a file as it is written, then a marker.
  const BLOCKS = 640;
  const gen = [
    "import sys",
    `for i in range(${BLOCKS}):`,
    "    sys.stdout.write('y' * 100000 + '\\n'); sys.stdout.flush()",
    "    open('/workspace/progress', 'w').write(str(i + 1))",
  ].join("\n");
  await fetch(`${bay.url}/v1/sandboxes/${id}/filesystem/files`, {
    method: "PUT",
    headers,
    body: JSON.stringify({ path: "gen.py", content: gen }),
  });
  ws.type('python3 gen.py; echo "END-$((6*7))"\n');
  const progress = async () => Number((await sh("cat /workspace/progress 2>/dev/null || echo 0")).output.trim());
  // The writer stops moving (it is blocked on the paused terminal), far from the end.
  let last = -1;
  const held = await pollUntil(
    async () => {
      const before = last;
      await Bun.sleep(1_000);
      last = await progress();
      return { before, now: last };
    },
    (p) => p.now > 0 && p.now === p.before,
    120_000,
    "the writer to be held back",
  );
  expect(held.now).toBeLessThan(BLOCKS / 4);
  const growth = (await rssBytes(bay.pid)) - baseline;
  console.log(`terminal paused at block ${held.now} of ${BLOCKS}; Bay's RSS grew ${(growth / MiB).toFixed(1)} MiB`);
  expect(growth).toBeLessThan(32 * MiB);

  ws.resumeReading();
  await ws.waitFor(/END-42\r\n/, 180_000);
  expect(ws.received).toBeGreaterThan(BLOCKS * 100_000);
  expect(ws.texts.map((t) => JSON.parse(t).type)).not.toContain("dropped");
  expect(await progress()).toBe(BLOCKS);
  ws.vanish();
}, 400_000);

test("a followed output of 64 MB passes through Bay without Bay's memory growing with it", async () => {
  const peakDuring = async (size: number) => {
    const pid = (await fetch(`${bay.url}/v1/sandboxes/${id}/shell/exec`, {
      method: "POST",
      headers,
      body: JSON.stringify({ command: `head -c ${size} /dev/zero | tr '\\0' z`, background: true }),
    }).then((r) => r.json())) as { process_id: string };
    const baseline = await rssBytes(bay.pid);
    let peak = baseline;
    const res = await fetch(`${bay.url}/v1/sandboxes/${id}/shell/processes/${pid.process_id}/output?offset=0`, {
      headers: { "x-owner": OWNER, accept: "text/event-stream" },
    });
    const sse = new SseReader(res);
    let got = 0;
    let dropped = 0;
    let events = 0;
    for (let e = await sse.next(); e; e = await sse.next()) {
      if (e.event === "output") got += e.data.next_offset - e.data.offset;
      if (e.event === "dropped") dropped += e.data.bytes;
      if (e.event === "exit") expect(e.data).toMatchObject({ status: "exited", exit_code: 0, next_offset: size });
      if (++events % 50 === 0) peak = Math.max(peak, await rssBytes(bay.pid));
    }
    expect(got + dropped).toBe(size);
    return { growth: peak - baseline, got, dropped };
  };
  const small = await peakDuring(4 * MiB);
  const large = await peakDuring(64 * MiB);
  console.log(
    `followed output: 4 MiB grew Bay by ${(small.growth / MiB).toFixed(1)} MiB, 64 MiB by ${(large.growth / MiB).toFixed(1)} MiB ` +
      `(${(large.got / MiB).toFixed(1)} MiB received, ${(large.dropped / MiB).toFixed(1)} MiB fell behind the ring)`,
  );
  expect(large.growth).toBeLessThan(small.growth + 32 * MiB);
}, 300_000);
