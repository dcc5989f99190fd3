/**
 * streamedAnswers (api/middleware/connection.ts) on a real Bun.serve with an idle
 * timeout of 1 s, behind a small Hono app: a stream whose client stops reading is
 * ended and its source cancelled (Bun itself would wait forever); a silent one
 * that is read lives on.
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
