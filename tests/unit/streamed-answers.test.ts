/**
 * streamedAnswers (api/middleware/connection.ts) on a real Bun.serve with an idle
 * timeout of 1 s, behind a small Hono app: a stream whose client stops reading is
 * ended and its source cancelled (Bun itself would wait forever); a silent one
 * that is read lives on; and one read slowly but steadily, a 6 MiB event in one
 * chunk and more behind it over four idle timeouts, is not taken for a stopped reader.
 */
import { afterEach, expect, test } from "bun:test";
import { connect } from "node:net";
import { Hono } from "hono";
import { streamedAnswers } from "../../src/bay/api/middleware/connection.ts";

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** An app whose /endless streams 64 KiB events as fast as they are taken, and whose /silent is quiet for 6 s. */
function serve() {
  const seen = { cancelledAt: 0, produced: 0 };
  const app = new Hono();
  app.use(streamedAnswers(1));
  const chunk = new TextEncoder().encode(`data: ${"x".repeat(64 * 1024)}\n\n`);
  app.get("/endless", () => {
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        seen.produced += chunk.byteLength;
        ctl.enqueue(chunk);
      },
      cancel() {
        seen.cancelledAt = Date.now();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
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
  // One event of 6 MiB handed over as a single chunk (an exec result with a large output), 19 more behind it.
  app.get("/big", () => {
    const event = new TextEncoder().encode(`event: result\ndata: ${"y".repeat(6 * 1024 * 1024)}\n\n`);
    const small = new TextEncoder().encode(`event: output\ndata: ${"z".repeat(64 * 1024)}\n\n`);
    const end = new TextEncoder().encode("event: end\ndata: {}\n\n");
    let n = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        n++;
        if (n === 1) ctl.enqueue(event);
        else if (n <= 20) ctl.enqueue(small);
        else if (n === 21) ctl.enqueue(end);
        else ctl.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 1, fetch: app.fetch });
  stops.push(() => server.stop(true));
  return { port: server.port!, seen };
}

test("a client that stops reading a stream: the stream is ended and its source cancelled, with what was produced bounded", async () => {
  const { port, seen } = serve();
  const started = Date.now();
  // Reads nothing after the request: the socket's buffers fill and Bun stops taking chunks.
  const sock = connect({ host: "127.0.0.1", port }, () => {
    sock.write("GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n");
    sock.pause();
  });
  sock.on("error", () => {});
  stops.push(() => sock.destroy());
  for (let i = 0; i < 100 && seen.cancelledAt === 0; i++) await Bun.sleep(100);
  // Cancelled about 1 s (the idle timeout) after the buffers filled. Bun keeps the socket
  // itself until its client goes (it never cuts a client that stops reading): what the
  // stream held (a Ship's stream, an owner's stream slot) is given back.
  expect(seen.cancelledAt).toBeGreaterThan(0);
  expect(seen.cancelledAt - started).toBeLessThan(8_000);
  expect(seen.produced).toBeLessThan(64 * 1024 * 1024);
}, 30_000);

test("a silent stream that is read gets all its events past the idle timeout", async () => {
  const { port } = serve();
  const res = await fetch(`http://127.0.0.1:${port}/silent`);
  const text = await res.text();
  expect(text).toContain("event: e1");
  expect(text).toContain("event: e2");
}, 20_000);

test("a client that reads a large event slowly but steadily gets all of it, though it takes many idle timeouts", async () => {
  const { port } = serve();
  const started = Date.now();
  let received = 0;
  let ended = false;
  // About 1.5 MiB/s: the 6 MiB event takes ~4 s, four times the idle timeout, with no pause of even 0.1 s.
  const sock = connect({ host: "127.0.0.1", port }, () => sock.write("GET /big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  sock.setNoDelay(true);
  let tail = "";
  sock.on("data", (d: Buffer) => {
    received += d.length;
    tail = (tail + d.toString("latin1")).slice(-200);
    sock.pause();
    setTimeout(() => sock.resume(), Math.ceil(d.length / 1536));
  });
  sock.on("error", () => {});
  sock.on("close", () => {
    ended = true;
  });
  stops.push(() => sock.destroy());
  while (!ended && Date.now() - started < 20_000) await Bun.sleep(50);
  expect(ended).toBe(true);
  expect(Date.now() - started).toBeGreaterThan(2_000);
  expect(received).toBeGreaterThan(6 * 1024 * 1024);
  expect(tail).toContain("event: end");
}, 30_000);
