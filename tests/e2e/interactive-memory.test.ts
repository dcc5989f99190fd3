/**
 * Nothing piles up in Bay for a slow reader, on a Bay subprocess (its own RSS
 * measured) and the real image:
 * - a terminal client that stops reading its socket while the shell writes
 *   64 MB: Bay stops acknowledging, Ship stops the PTY, the writer waits (it
 *   gets no further than a few MB), Bay's memory stays flat; once the client
 *   reads again everything arrives, nothing dropped;
 * - a follower of a process's output that stops reading while 256 MB are
 *   written: Bay reads no further ahead than its transport buffers, Ship is held
 *   back and its ring drops the rest (reported as `dropped`);
 * - a followed output of 256 MB read to its end: Bay keeps none of it, during
 *   the stream or after.
 * What Bay keeps is measured after a full collection in the Bay process
 * (spawnBay's probe): its plain RSS also counts garbage not yet collected, which
 * on a loaded machine reached 47 MiB for a 64 MiB follow and says nothing about
 * what Bay holds. Every byte is either received or reported as dropped.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { pollUntil } from "../support/harness.ts";
import { RawHttpGet } from "../support/raw-http.ts";
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
  bay = await spawnBay({}, { probe: true });
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
    "import os, sys",
    `for i in range(${BLOCKS}):`,
    "    sys.stdout.write('y' * 100000 + '\\n'); sys.stdout.flush()",
    // Replaced atomically: a reader never sees the count empty mid-write.
    "    open('/workspace/progress.tmp', 'w').write(str(i + 1)); os.replace('/workspace/progress.tmp', '/workspace/progress')",
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

/** Starts a background writer of `size` bytes; its process id. */
const writer = async (size: number): Promise<string> => {
  const r = await fetch(`${bay.url}/v1/sandboxes/${id}/shell/exec`, {
    method: "POST",
    headers,
    body: JSON.stringify({ command: `head -c ${size} /dev/zero | tr '\\0' z`, background: true }),
  });
  return ((await r.json()) as { process_id: string }).process_id;
};
const outputPath = (pid: string) => `/v1/sandboxes/${id}/shell/processes/${pid}/output?offset=0`;

/** Reads a follow to its end: bytes received and reported dropped; `each` runs every 50 events (given their count). */
async function drain(sse: SseReader, size: number, each?: (events: number) => Promise<void>) {
  let got = 0;
  let dropped = 0;
  let events = 0;
  for (let e = await sse.next(); e; e = await sse.next()) {
    if (e.event === "output") got += e.data.next_offset - e.data.offset;
    if (e.event === "dropped") dropped += e.data.bytes;
    if (e.event === "exit") expect(e.data).toMatchObject({ status: "exited", exit_code: 0, next_offset: size });
    if (++events % 50 === 0) await each?.(events);
  }
  return { got, dropped };
}

const mib = (b: number) => (b / MiB).toFixed(1);

test("a follower that stops reading holds Ship back: Bay keeps none of the 256 MB written meanwhile, the ring drops it", async () => {
  const SIZE = 256 * MiB;
  const port = Number(new URL(bay.url).port);
  const clientHeaders = { "x-owner": OWNER, accept: "text/event-stream" };
  // The same path once first, so that what it loads is in the baseline.
  const warm = await writer(MiB);
  await drain(new SseReader(new Response((await RawHttpGet.open(port, outputPath(warm), clientHeaders)).body)), MiB);
  const base = await bay.retained!();

  const pid = await writer(SIZE);
  const client = await RawHttpGet.open(port, outputPath(pid), clientHeaders);
  expect(client.status).toBe(200);
  client.pause();
  // The writer runs to its end while nobody reads: whatever of it Bay took from Ship is still in Bay.
  await pollUntil(
    async () =>
      ((await (await fetch(`${bay.url}/v1/sandboxes/${id}/shell/processes/${pid}`, { headers })).json()) as { status: string }).status,
    (status) => status !== "running",
    180_000,
    "the writer to finish",
  );
  const held = await bay.retained!();
  client.resume();
  const { got, dropped } = await drain(new SseReader(new Response(client.body)), SIZE);
  console.log(
    `paused follower: Bay held ${mib(held.rss - base.rss)} MiB RSS, ${mib(held.heap - base.heap)} MiB heap after a collection ` +
      `while ${SIZE / MiB} MiB were written; then ${mib(got)} MiB arrived, ${mib(dropped)} MiB reported dropped`,
  );
  expect(got + dropped).toBe(SIZE);
  expect(held.heap - base.heap).toBeLessThan(16 * MiB);
  expect(held.rss - base.rss).toBeLessThan(32 * MiB);
}, 300_000);

test("a followed output of 256 MB passes through Bay without Bay keeping any of it, during or after", async () => {
  const SIZE = 256 * MiB;
  const base = await bay.retained!();
  const pid = await writer(SIZE);
  const res = await fetch(`${bay.url}${outputPath(pid)}`, { headers: { "x-owner": OWNER, accept: "text/event-stream" } });
  // What Bay holds while the stream passes, after a collection (garbage not yet collected is not kept),
  // and its plain RSS peak for the log: the latter depends on when the collector runs, not on the size.
  let during = 0;
  let peak = 0;
  const { got, dropped } = await drain(new SseReader(res), SIZE, async (events) => {
    peak = Math.max(peak, (await rssBytes(bay.pid)) - base.rss);
    if (events % 100 === 0) during = Math.max(during, (await bay.retained!()).rss - base.rss);
  });
  const after = await bay.retained!();
  console.log(
    `followed output: ${mib(got)} MiB received, ${mib(dropped)} MiB fell behind the ring; Bay's RSS peaked ${mib(peak)} MiB over its baseline, ` +
      `held ${mib(during)} MiB at most after collections during the stream, ${mib(after.rss - base.rss)} MiB RSS and ${mib(after.heap - base.heap)} MiB heap after it`,
  );
  expect(got + dropped).toBe(SIZE);
  expect(got).toBeGreaterThan(8 * MiB);
  expect(during).toBeLessThan(32 * MiB);
  expect(after.rss - base.rss).toBeLessThan(32 * MiB);
  expect(after.heap - base.heap).toBeLessThan(16 * MiB);
}, 300_000);
