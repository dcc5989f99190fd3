/**
 * streamedAnswers (api/middleware/connection.ts) on a real Bun.serve with an idle
 * timeout of 1 s, behind a small Hono app: a stream whose client stops reading is
 * ended and its source cancelled (Bun itself would wait forever); a silent one
 * that is read lives on; a large event goes over byte for byte, and one read
 * slowly but steadily over many idle timeouts is not taken for a stopped reader,
 * while a client that stops in the middle of one still is, and one that trickles
 * through it slower than the floor is cut when the event's deadline passes.
 */
import { afterEach, expect, test } from "bun:test";
import { connect } from "node:net";
import { Hono } from "hono";
import { streamedAnswers } from "../../src/bay/api/middleware/connection.ts";

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

const BIG_MIB = 12;
/** A 12 MiB event whose bytes differ along it (so a piece out of place would show). */
const bigEvent = (() => {
  const head = new TextEncoder().encode("event: result\ndata: ");
  const out = new Uint8Array(head.byteLength + BIG_MIB * 1024 * 1024 + 2);
  out.set(head);
  for (let i = head.byteLength; i < out.byteLength - 2; i++) out[i] = 97 + ((i * 7 + (i >> 16)) % 26);
  out.set([10, 10], out.byteLength - 2);
  return out;
})();
const smallEvent = (n: number) => new TextEncoder().encode(`event: output\ndata: ${String(n).repeat(64 * 1024)}\n\n`);
/** Everything /big sends, in order. */
const bigStream = () => {
  const parts = [bigEvent];
  for (let n = 2; n <= 20; n++) parts.push(smallEvent(n));
  parts.push(new TextEncoder().encode("event: end\ndata: {}\n\n"));
  return Buffer.concat(parts);
};
const sha = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");

/** An app whose /endless streams 64 KiB events as fast as they are taken, and whose /silent is quiet for 6 s. */
function serve(idleSeconds = 1, minBytesPerSecond?: number) {
  const seen = { cancelledAt: 0, produced: 0, reason: "" };
  const app = new Hono();
  app.use(streamedAnswers(idleSeconds, minBytesPerSecond));
  const chunk = new TextEncoder().encode(`data: ${"x".repeat(64 * 1024)}\n\n`);
  /** An answer of 64 KiB chunks as fast as they are taken, with `headers`. */
  const endless = (headers: Record<string, string>) => () => {
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        seen.produced += chunk.byteLength;
        ctl.enqueue(chunk);
      },
      cancel() {
        seen.cancelledAt = Date.now();
      },
    });
    return new Response(body, { headers });
  };
  app.get("/endless", endless({ "content-type": "text/event-stream" }));
  // A server's answer from a sandbox (…/ports/…): any type, marked.
  app.get("/port", endless({ "content-type": "application/octet-stream", "x-bay-upstream": "200" }));
  app.get("/silent", () => {
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        if (n++ > 0) await Bun.sleep(6_000);
        ctl.enqueue(new TextEncoder().encode(`event: e${n}\ndata: {}\n\n`));
        if (n === 2) ctl.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  // One event of BIG_MIB handed over as a single chunk (an exec result with a large output), 19 more behind it.
  app.get("/big", () => {
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        n++;
        if (n === 1) ctl.enqueue(bigEvent);
        else if (n <= 20) ctl.enqueue(smallEvent(n));
        else if (n === 21) ctl.enqueue(new TextEncoder().encode("event: end\ndata: {}\n\n"));
        else ctl.close();
      },
      cancel(reason) {
        seen.cancelledAt = Date.now();
        seen.reason = String(reason);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: idleSeconds, fetch: app.fetch });
  stops.push(() => server.stop(true));
  return { port: server.port!, seen };
}

/** A client that asks for `path` and then reads nothing: the socket's buffers fill and Bun stops taking chunks. */
async function stopsReading(path: string) {
  const { port, seen } = serve();
  const started = Date.now();
  const sock = connect({ host: "127.0.0.1", port }, () => {
    sock.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    sock.pause();
  });
  sock.on("error", () => {});
  stops.push(() => sock.destroy());
  for (let i = 0; i < 100 && seen.cancelledAt === 0; i++) await Bun.sleep(100);
  return { ...seen, after: seen.cancelledAt - started };
}

test("a client that stops reading a stream: the stream is ended and its source cancelled, with what was produced bounded", async () => {
  const seen = await stopsReading("/endless");
  // Cancelled about 1 s (the idle timeout) after the buffers filled. Bun keeps the socket
  // itself until its client goes (it never cuts a client that stops reading): what the
  // stream held (a Ship's stream, an owner's stream slot) is given back.
  expect(seen.cancelledAt).toBeGreaterThan(0);
  expect(seen.after).toBeLessThan(8_000);
  expect(seen.produced).toBeLessThan(64 * 1024 * 1024);
}, 30_000);

// Not lifted, its idle timeout cuts it: Bun's own timer (every few seconds) ends an answer it cannot write.
test("a client that stops reading a sandbox server's answer is let go too, by its idle timeout: its source cancelled (review s87 I1)", async () => {
  const seen = await stopsReading("/port");
  expect(seen.cancelledAt).toBeGreaterThan(0);
  expect(seen.after).toBeLessThan(8_000);
  expect(seen.produced).toBeLessThan(64 * 1024 * 1024);
}, 30_000);

test("a silent stream that is read gets all its events past the idle timeout", async () => {
  const { port } = serve();
  const res = await fetch(`http://127.0.0.1:${port}/silent`);
  const text = await res.text();
  expect(text).toContain("event: e1");
  expect(text).toContain("event: e2");
}, 20_000);

test("a large event goes over byte for byte, and the events behind it in order", async () => {
  const { port } = serve();
  const got = new Uint8Array(await (await fetch(`http://127.0.0.1:${port}/big`)).arrayBuffer());
  const want = bigStream();
  expect(got.byteLength).toBe(want.byteLength);
  expect(sha(got)).toBe(sha(want));
}, 30_000);

/** A raw HTTP/1.1 client on `port` that reads `path` at about `bytesPerMs`, then stops after `stopAfter` bytes (if given). */
function slowReader(port: number, path: string, bytesPerMs: number, stopAfter = Number.POSITIVE_INFINITY) {
  const state = { received: 0, tail: "", ended: false };
  const sock = connect({ host: "127.0.0.1", port }, () =>
    sock.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
  );
  sock.on("data", (d: Buffer) => {
    state.received += d.length;
    state.tail = (state.tail + d.toString("latin1")).slice(-200);
    sock.pause();
    if (state.received < stopAfter) setTimeout(() => sock.resume(), Math.ceil(d.length / bytesPerMs));
  });
  sock.on("error", () => {});
  sock.on("close", () => {
    state.ended = true;
  });
  stops.push(() => sock.destroy());
  return state;
}

test("a client that reads a large event slowly but steadily gets all of it, though it takes several idle timeouts", async () => {
  // Idle timeout 3 s; about 1.5 MiB/s, so the 12 MiB event alone takes ~8 s. Between pulls Bun
  // waits for ~1.3 MB of what it holds to drain: under 1 s at this rate, a third of the timeout.
  const { port, seen } = serve(3);
  const started = Date.now();
  const reader = slowReader(port, "/big", 1536);
  while (!reader.ended && Date.now() - started < 40_000) await Bun.sleep(50);
  expect(seen.cancelledAt).toBe(0);
  expect(reader.received).toBeGreaterThan(bigStream().byteLength);
  // The stream's last chunk, then the empty chunk that ends a chunked body.
  expect(reader.tail.endsWith("event: end\ndata: {}\n\n\r\n0\r\n\r\n")).toBe(true);
  // It did take more than two idle timeouts: had Bay waited for the next pull with the whole event handed over, it would have cut it.
  expect(Date.now() - started).toBeGreaterThan(6_000);
}, 60_000);

test("a client that stops reading in the middle of a large event is still cut, and the source cancelled", async () => {
  const { port, seen } = serve();
  const started = Date.now();
  // Takes 1 MiB of the 12 MiB event quickly, then reads nothing more.
  const reader = slowReader(port, "/big", 64 * 1024, 1024 * 1024);
  for (let i = 0; i < 200 && seen.cancelledAt === 0; i++) await Bun.sleep(100);
  expect(seen.cancelledAt).toBeGreaterThan(0);
  expect(seen.cancelledAt - started).toBeLessThan(15_000);
  expect(reader.received).toBeLessThan(bigStream().byteLength);
}, 30_000);

test("a client that trickles through a large event is cut once the event outlives its deadline, and the source cancelled", async () => {
  // Idle timeout 3 s, and a reader at ~1 MiB/s, which Bun pulls for every ~1.3 s: never taken
  // for a stopped one. But with a floor of 12 MiB/s the 12 MiB event must be taken within
  // 3 s + 1 s, and Bun, which holds about 5 MiB ahead of its client, asks for what follows
  // the event only after ~7 s: Bay stops holding it instead of waiting as long as the client likes.
  const { port, seen } = serve(3, 12 * 1024 * 1024);
  const started = Date.now();
  const reader = slowReader(port, "/big", 1024);
  while (!reader.ended && Date.now() - started < 40_000) await Bun.sleep(50);
  expect(seen.cancelledAt).toBeGreaterThan(0);
  expect(seen.reason).toContain("too slowly");
  expect(reader.received).toBeLessThan(bigEvent.byteLength);
}, 60_000);

test("a wall-clock step in the middle of a large event does not cut its steady reader", async () => {
  const realNow = Date.now;
  try {
    const { port, seen } = serve(3);
    const started = realNow();
    const reader = slowReader(port, "/big", 1536);
    // A second in, Bun has asked for about half of the 12 MiB event: the clock jumps an hour ahead.
    await Bun.sleep(1_000);
    Date.now = () => realNow() + 3_600_000;
    while (!reader.ended && realNow() - started < 40_000) await Bun.sleep(50);
    expect(seen.cancelledAt).toBe(0);
    expect(reader.received).toBeGreaterThan(bigStream().byteLength);
  } finally {
    Date.now = realNow;
  }
}, 60_000);
