/**
 * A Ship answer that Bay reads whole is bounded (runtime/bounded-answer.ts), even
 * from a Ship that holds its session's secret and proves every answer: an endless
 * chunked body, a Content-Length past the bound, an endless error body. Bodies Bay
 * relays as a stream (a download) stay unbounded. Against small HTTP servers on
 * loopback playing such a Ship.
 */
import { afterEach, expect, test } from "bun:test";
import { NONCE_HEADER, PROOF_HEADER, shipProof } from "../../src/protocol/ship/index.ts";
import { MAX_ANSWER_BYTES } from "../../src/bay/runtime/bounded-answer.ts";
import { ShipBadResponseError } from "../../src/bay/runtime/errors/ship-bad-response-error.ts";
import { ShipClient } from "../../src/bay/runtime/ship-client.ts";
import type { BayError } from "../../src/bay/errors.ts";

const SECRET = "s".repeat(43);
const SESSION = "sess-bound";
const target = (port: number) => ({ sessionId: SESSION, endpoint: `http://127.0.0.1:${port}`, secret: SECRET });
const MiB = 1024 * 1024;
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** A proving "Ship" whose answers come from `answer`; counts the body bytes it has handed to the socket. */
function provingShip(answer: (req: Request, sent: { bytes: number }) => Response) {
  const sent = { bytes: 0 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const res = answer(req, sent);
      res.headers.set(PROOF_HEADER, shipProof(SECRET, req.headers.get(NONCE_HEADER) ?? ""));
      return res;
    },
  });
  stops.push(() => server.stop(true));
  return { port: server.port!, sent };
}

/** A chunked body of 1 MiB chunks, `total` bytes in all (endless when Infinity). */
function chunks(sent: { bytes: number }, total = Number.POSITIVE_INFINITY, fill = 0x61): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(MiB).fill(fill);
  return new ReadableStream({
    pull(ctl) {
      if (sent.bytes >= total) return ctl.close();
      sent.bytes += chunk.byteLength;
      ctl.enqueue(chunk);
    },
  });
}

const meta = JSON.stringify({
  runtime: { name: "ship", version: "t", api_version: "v1" },
  session: { id: SESSION },
  capabilities: { python: true },
  note: "ünïcödé ✓",
});

test("an endless chunked /meta is cut at the bound: ship_error, and the Ship was not read much past it", async () => {
  const { port, sent } = provingShip((_req, s) => new Response(chunks(s), { headers: { "content-type": "application/json" } }));
  const err = await new ShipClient().meta(target(port)).catch((e) => e);
  expect(err).toBeInstanceOf(ShipBadResponseError);
  expect((err as BayError).code).toBe("ship_error");
  expect((err as BayError).message).toContain(`larger than ${MAX_ANSWER_BYTES} bytes`);
  // Socket and client buffers hold a few MiB at most beyond what was read.
  expect(sent.bytes).toBeGreaterThan(MAX_ANSWER_BYTES);
  expect(sent.bytes).toBeLessThan(MAX_ANSWER_BYTES + 32 * MiB);
});

/** A raw proving "Ship" that answers every call with `head` (status line and headers, no proof) and then `body`. */
function rawShip(head: string, body: (socket: { write(b: string | Uint8Array): number }) => void) {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, data) {
        const nonce = /x-bay-nonce: *([^\r\n]+)/i.exec(data.toString())?.[1] ?? "";
        socket.write(`${head}${PROOF_HEADER}: ${shipProof(SECRET, nonce)}\r\n\r\n`);
        body(socket);
      },
    },
  });
  stops.push(() => server.stop(true));
  return server.port;
}

test("a Content-Length past the bound is refused at once, without waiting for its body", async () => {
  // Announces twice the bound, sends 10 bytes, then holds the connection open.
  const port = rawShip(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${2 * MAX_ANSWER_BYTES}\r\n`, (s) => {
    s.write('{"runtime"');
  });
  const started = performance.now();
  const err = await new ShipClient().meta(target(port)).catch((e) => e);
  expect(err).toBeInstanceOf(ShipBadResponseError);
  expect((err as BayError).message).toContain("larger than");
  // meta's own deadline is 3 s: the refusal did not wait for it.
  expect(performance.now() - started).toBeLessThan(2500);
});

test("an endless error body is cut too: the call fails as a ship_error with the Ship's status", async () => {
  const { port } = provingShip((_req, s) => new Response(chunks(s), { status: 500, headers: { "content-type": "application/json" } }));
  const err = await new ShipClient().listContexts(target(port)).catch((e) => e);
  expect(err).toBeInstanceOf(ShipBadResponseError);
  expect((err as BayError).details).toMatchObject({ ship_status: 500 });
});

test("a chunked answer within the bound reads whole as before, multi-byte characters split across chunks included", async () => {
  const bytes = new TextEncoder().encode(meta);
  const { port } = provingShip(
    () =>
      new Response(
        new ReadableStream({
          start(ctl) {
            // One byte per chunk, so every multi-byte character is split.
            for (const b of bytes) ctl.enqueue(new Uint8Array([b]));
            ctl.close();
          },
        }),
        { headers: { "content-type": "application/json" } },
      ),
  );
  const m = (await new ShipClient().meta(target(port))) as unknown as { note: string; session: { id: string } };
  expect(m.session.id).toBe(SESSION);
  expect(m.note).toBe("ünïcödé ✓");
  const res = await new ShipClient().listContexts(target(port));
  expect(new TextDecoder().decode(await res.arrayBuffer())).toBe(meta);
});

test("an answer with its length within the bound keeps the native reads", async () => {
  const { port } = provingShip(() => new Response(meta, { headers: { "content-type": "application/json" } }));
  const res = await new ShipClient().listContexts(target(port));
  expect(Object.hasOwn(res, "json")).toBe(false);
  expect(((await res.json()) as unknown as { session: { id: string } }).session.id).toBe(SESSION);
});

test("a relayed stream is not bounded: a download past the bound streams through whole", async () => {
  const total = MAX_ANSWER_BYTES + 8 * MiB;
  const { port } = provingShip((_req, s) => new Response(chunks(s, total), { headers: { "content-type": "application/octet-stream" } }));
  const res = await new ShipClient().downloadFile(target(port), "/workspace/big");
  const reader = res.body!.getReader();
  let got = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) got += r.value.byteLength;
  expect(got).toBe(total);
});

test("a small Content-Length beside Transfer-Encoding: chunked does not pass the bound (Bun reads the chunks)", async () => {
  const chunk = new TextEncoder().encode(`${MiB.toString(16)}\r\n${"a".repeat(MiB)}\r\n`);
  const port = rawShip("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n", (s) => {
    // Past the bound, then more: the read must stop at the bound.
    let chunks = 0;
    let rest = chunk.subarray(0, 0);
    const push = () => {
      for (;;) {
        if (rest.byteLength === 0) {
          if (chunks++ >= MAX_ANSWER_BYTES / MiB + 16) return;
          rest = chunk;
        }
        const n = s.write(rest);
        rest = rest.subarray(Math.max(0, n));
        if (rest.byteLength > 0) return void setTimeout(push, 1);
      }
    };
    push();
  });
  const res = await new ShipClient().listContexts(target(port));
  const err = await res.text().catch((e) => e);
  expect(err).toBeInstanceOf(ShipBadResponseError);
  expect((err as BayError).message).toContain("larger than");
});

test("a compressed answer is read as the bytes that came, never inflated (no gzip bomb)", async () => {
  const bomb = Bun.gzipSync(new Uint8Array(256 * MiB).fill(0x61));
  const port = rawShip(
    `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${bomb.byteLength}\r\n`,
    (s) => {
      s.write(bomb);
    },
  );
  const res = await new ShipClient().listContexts(target(port));
  expect((await res.arrayBuffer()).byteLength).toBe(bomb.byteLength);
  // Read as JSON it is garbage, not 256 MiB of it: meta fails as an invalid answer.
  const err = await new ShipClient().meta(target(port)).catch((e) => e);
  expect(err).toBeInstanceOf(ShipBadResponseError);
});
