/**
 * Bay's end of the call channel (src/bay/runtime/ship-channel.ts), against small
 * servers on loopback that play a Ship, well-behaved or not: a channel is used
 * only once it is open and proven, a Ship that cannot prove itself keeps every
 * call on HTTP, and a call on the channel fails as it would over HTTP (deadline,
 * client gone, connection lost, a broken frame), never hangs and never runs twice.
 */
import { afterEach, expect, test } from "bun:test";
import { Hono } from "hono";
import { relay } from "../../src/bay/api/relay.ts";
import { encodeAnswer, parseChannelFrame } from "../../src/protocol/ship/channel.ts";
import { NONCE_HEADER, PROOF_HEADER, shipProof } from "../../src/protocol/ship/index.ts";
import { BayError } from "../../src/bay/errors.ts";
import { ShipBadResponseError } from "../../src/bay/runtime/errors/ship-bad-response-error.ts";
import { ShipTimeoutError } from "../../src/bay/runtime/errors/ship-timeout-error.ts";
import { ShipUnreachableError } from "../../src/bay/runtime/errors/ship-unreachable-error.ts";
import { ShipWrongSessionError } from "../../src/bay/runtime/errors/ship-wrong-session-error.ts";
import { channelAnswer, ShipChannels } from "../../src/bay/runtime/ship-channel.ts";
import { ShipClient } from "../../src/bay/runtime/ship-client.ts";

const SECRET = "c".repeat(43);
let server: ReturnType<typeof Bun.serve> | null = null;
let channels: ShipChannels | null = null;
afterEach(() => {
  channels?.closeAll();
  server?.stop(true);
  server = null;
});

type Frame = NonNullable<ReturnType<typeof parseChannelFrame>>;
interface Socket {
  send(f: string): void;
  close(): void;
}

/**
 * A Ship stand-in: HTTP execs answer `{"via":"http"}` with the nonce's proof; the
 * channel proves itself with `proof(nonce)` and hands each frame to `onFrame`
 * (default: the answer `{"via":"channel"}`).
 */
function ship(opts: { proof?: (nonce: string) => string; onFrame?: (ws: Socket, f: Frame) => void } = {}) {
  const stats = { upgrades: 0, http: 0, frames: [] as Frame[] };
  const onFrame =
    opts.onFrame ??
    ((ws: Socket, f: Frame) => {
      if ("id" in f) ws.send(encodeAnswer({ id: f.id, status: 200, type: "application/json", body: '{"via":"channel"}' }));
    });
  server = Bun.serve<{ nonce: string }>({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      const nonce = req.headers.get(NONCE_HEADER) ?? "";
      if (new URL(req.url).pathname === "/channel") {
        stats.upgrades++;
        return srv.upgrade(req, { data: { nonce } }) ? undefined : new Response("no", { status: 400 });
      }
      stats.http++;
      return Response.json({ via: "http" }, { headers: { [PROOF_HEADER]: shipProof(SECRET, nonce) } });
    },
    websocket: {
      open(ws) {
        ws.send(JSON.stringify({ type: "proof", proof: (opts.proof ?? ((n) => shipProof(SECRET, n)))(ws.data.nonce) }));
      },
      message(ws, data) {
        const f = parseChannelFrame(data);
        if (f) {
          stats.frames.push(f);
          onFrame({ send: (x) => ws.send(x), close: () => ws.close() }, f);
        }
      },
    },
  });
  const target = { sessionId: "sess-1", endpoint: `http://127.0.0.1:${server.port}`, secret: SECRET };
  channels = new ShipChannels();
  return { stats, target, client: new ShipClient(fetch, channels), channels };
}

async function untilOpen(c: ShipChannels): Promise<void> {
  for (let i = 0; i < 200 && c.size === 0; i++) await Bun.sleep(5);
  expect(c.size).toBe(1);
}

const exec = (client: ShipClient, target: { sessionId: string; endpoint: string; secret: string }) =>
  client.execPython(target, { code: "1+1", timeout: 30 }).then((r) => r.json() as Promise<unknown>);

test("the first call goes over HTTP while the channel opens; once proven, calls travel on it, one channel per Ship", async () => {
  const { stats, target, client, channels } = ship();
  expect(await exec(client, target)).toEqual({ via: "http" });
  await untilOpen(channels);
  expect(await exec(client, target)).toEqual({ via: "channel" });
  await Promise.all(Array.from({ length: 20 }, () => exec(client, target)));
  expect(stats.upgrades).toBe(1);
  expect(stats.http).toBe(1);
  const calls = stats.frames.filter((f) => "id" in f);
  expect(calls).toHaveLength(21);
  expect(new Set(calls.map((f) => ("id" in f ? f.id : 0))).size).toBe(21);
  expect(calls[0]).toMatchObject({ method: "POST", path: "/ipython/exec", headers: { "content-type": "application/json" } });
});

test("a listener that cannot prove the session's secret never carries a call: every call stays on HTTP, and it is not asked again at once", async () => {
  const { stats, target, client, channels } = ship({ proof: () => shipProof("another-secret".padEnd(43, "x"), "n") });
  for (let i = 0; i < 5; i++) {
    expect(await exec(client, target)).toEqual({ via: "http" });
    await Bun.sleep(20);
  }
  expect(channels.size).toBe(0);
  expect(stats.upgrades).toBe(1);
  expect(stats.frames).toHaveLength(0);
});

test("a call past its deadline is a ShipTimeoutError, and the Ship is told to cancel it", async () => {
  const { stats, target, client, channels } = ship({ onFrame: () => {} });
  await exec(client, target).catch(() => {});
  await untilOpen(channels);
  const sent = channels.call(target, { method: "GET", path: "/meta" }, 100);
  expect(sent).not.toBeNull();
  expect(await sent!.catch((e) => e)).toBeInstanceOf(ShipTimeoutError);
  await Bun.sleep(20);
  const call = stats.frames.find((f) => "id" in f) as { id: number };
  expect(stats.frames).toContainEqual({ cancel: call.id });
});

test("a client that goes away abandons the call (client_gone) and the Ship is told to cancel it; an already gone client sends nothing", async () => {
  const { stats, target, client, channels } = ship({ onFrame: () => {} });
  await exec(client, target).catch(() => {});
  await untilOpen(channels);
  const gone = new AbortController();
  const sent = channels.call(target, { method: "GET", path: "/meta" }, 10_000, gone.signal)!;
  await Bun.sleep(10);
  gone.abort();
  const err = await sent.catch((e) => e);
  expect(err).toBeInstanceOf(BayError);
  expect(err.details).toEqual({ reason: "client_gone" });
  await Bun.sleep(20);
  expect(stats.frames.filter((f) => "cancel" in f)).toHaveLength(1);
  const before = stats.frames.length;
  const dead = await channels.call(target, { method: "GET", path: "/meta" }, 10_000, AbortSignal.abort())!.catch((e) => e);
  expect(dead.details).toEqual({ reason: "client_gone" });
  await Bun.sleep(20);
  expect(stats.frames.length).toBe(before);
});

test("a call lost with its channel may have run: it fails as a lost connection and is never sent again; the next call goes over HTTP and a new channel opens", async () => {
  const { stats, target, client, channels } = ship({ onFrame: (ws, f) => "id" in f && ws.close() });
  await exec(client, target);
  await untilOpen(channels);
  const err = (await exec(client, target).catch((e) => e)) as ShipUnreachableError;
  expect(err).toBeInstanceOf(ShipUnreachableError);
  expect(err.refused).toBe(false);
  expect(err.details).toEqual({ reason: "connection_lost" });
  expect(stats.http).toBe(1);
  expect(channels.size).toBe(0);
  expect(await exec(client, target)).toEqual({ via: "http" });
  await untilOpen(channels);
  expect(stats.upgrades).toBe(2);
  expect(stats.http).toBe(2);
});

test("Bay closing its channels under a call fails it as lost, never re-sent; a channel that opens after closeAll is closed at once", async () => {
  const { stats, target, client, channels } = ship({ onFrame: () => {} });
  await exec(client, target);
  await untilOpen(channels);
  const running = exec(client, target).catch((e) => e);
  await Bun.sleep(20);
  channels.closeAll();
  expect(await running).toBeInstanceOf(ShipUnreachableError);
  expect(stats.http).toBe(1);
  // Stopped: calls go over HTTP and no channel opens again.
  expect(await exec(client, target)).toEqual({ via: "http" });
  await Bun.sleep(50);
  expect(channels.size).toBe(0);
  expect(stats.upgrades).toBe(1);
});

test("a call Ship refused at the channel's cap, before running it, goes over HTTP at once", async () => {
  const { stats, target, client, channels } = ship({
    onFrame: (ws, f) =>
      "id" in f &&
      ws.send(
        encodeAnswer({
          id: f.id,
          status: 429,
          type: "application/json",
          body: '{"error":{"code":"quota_exceeded","message":"full"}}',
          unrun: true,
        }),
      ),
  });
  await exec(client, target);
  await untilOpen(channels);
  expect(await exec(client, target)).toEqual({ via: "http" });
  expect(stats.http).toBe(2);
});

test("a content type no header can hold (CR LF, NUL, non-Latin) drops the channel as a bad answer; Bay goes on", async () => {
  const { target, client, channels } = ship({
    onFrame: (ws, f) => "id" in f && ws.send(`${JSON.stringify({ id: f.id, status: 200, type: "text/plain\r\nx-evil: 1" })}\n{}`),
  });
  await exec(client, target);
  await untilOpen(channels);
  expect(await exec(client, target).catch((e) => e)).toBeInstanceOf(ShipBadResponseError);
  expect(channels.size).toBe(0);
});

test("a path longer than a channel call may name goes over HTTP", async () => {
  const { stats, target, client, channels } = ship();
  await exec(client, target);
  await untilOpen(channels);
  const before = stats.frames.length;
  // Over HTTP (this stand-in's server refuses so long a request line: an error, never a channel frame).
  await client.deletePath(target, "x".repeat(17 * 1024)).catch(() => {});
  await client.deletePath(target, "x".repeat(1024)).catch(() => {});
  expect(stats.frames.length).toBe(before + 1);
});

test("a frame that is not an answer fails the calls in flight as a bad answer and closes the channel", async () => {
  const { target, client, channels } = ship({ onFrame: (ws, f) => "id" in f && ws.send("not an answer") });
  await exec(client, target);
  await untilOpen(channels);
  expect(await exec(client, target).catch((e) => e)).toBeInstanceOf(ShipBadResponseError);
  expect(channels.size).toBe(0);
});

test("an answer to an id never asked is ignored; a 401 on a proven channel is a bad answer, not another session", async () => {
  const { target, client, channels } = ship({
    onFrame: (ws, f) => {
      if (!("id" in f)) return;
      ws.send(encodeAnswer({ id: f.id + 1000, status: 200, type: "application/json", body: '{"via":"stray"}' }));
      ws.send(encodeAnswer({ id: f.id, status: 401, type: "application/json", body: '{"error":{"code":"unauthorized","message":"no"}}' }));
    },
  });
  await exec(client, target);
  await untilOpen(channels);
  const err = await exec(client, target).catch((e) => e);
  expect(err).toBeInstanceOf(ShipBadResponseError);
  expect(err).not.toBeInstanceOf(ShipWrongSessionError);
  expect(channels.size).toBe(1);
});

test("a call too large for one frame goes over HTTP even with the channel open", async () => {
  const { stats, target, client, channels } = ship();
  await exec(client, target);
  await untilOpen(channels);
  const big = await client.execPython(target, { code: `x = "${"a".repeat(300_000)}"`, timeout: 30 });
  expect((await big.json()) as unknown).toEqual({ via: "http" });
  expect(stats.http).toBe(2);
});

test("a channel's answer is relayed as it came (not read again, no second Response), status, type and body kept, small or large; once read, or over HTTP, it is not", async () => {
  let calls = 0;
  const { target, client, channels } = ship({
    onFrame: (ws, f) => {
      if (!("id" in f)) return;
      // The third answer on the channel is large (over 64 KiB): relayed as it came too.
      const body = ++calls === 3 ? JSON.stringify({ big: "x".repeat(70 * 1024) }) : '{"é":"ü"}';
      ws.send(encodeAnswer({ id: f.id, status: 200, type: "application/json", body }));
    },
  });
  const overHttp = await client.execPython(target, { code: "1+1", timeout: 30 });
  expect(channelAnswer(overHttp)).toBe(false);
  await untilOpen(channels);
  const answer = await client.execPython(target, { code: "1+1", timeout: 30 });
  expect(channelAnswer(answer)).toBe(true);
  const app = new Hono();
  app.use((c, next) => {
    c.set("requestId", "req-1");
    return next();
  });
  app.get("/", (c) => relay(c, answer));
  let later: Response | null = null;
  app.get("/later", (c) => relay(c, later!));
  // The same answer as it would come over HTTP: relayed with the same headers.
  const sameOverHttp = () =>
    new Response('{"é":"ü"}', { headers: { "content-type": "application/json", "content-length": "11", etag: '"x"' } });
  app.get("/http", (c) => relay(c, sameOverHttp()));
  const relayed = await app.request("/");
  expect(relayed).toBe(answer);
  expect(relayed.status).toBe(200);
  expect(relayed.headers.get("content-type")).toBe("application/json");
  expect(relayed.headers.get("x-request-id")).toBe("req-1");
  const viaHttp = await app.request("/http");
  const names = (h: Headers) => {
    const all: string[] = [];
    h.forEach((_, name) => {
      all.push(name);
    });
    return all.filter((name) => name !== "etag").sort();
  };
  expect(names(relayed.headers)).toEqual(names(viaHttp.headers));
  expect(await relayed.json()).toEqual({ é: "ü" });
  const read = await client.execPython(target, { code: "1+1", timeout: 30 });
  await read.text();
  expect(channelAnswer(read)).toBe(false);
  const large = await client.execPython(target, { code: "1+1", timeout: 30 });
  expect(channelAnswer(large)).toBe(true);
  later = large;
  const relayedLarge = await app.request("/later");
  expect(relayedLarge.headers.get("x-request-id")).toBe("req-1");
  expect(((await relayedLarge.json()) as { big: string }).big).toHaveLength(70 * 1024);
});

test("a blank or padded type from a channel is relayed as an HTTP header's value would be (review s41): one Content-Type, trimmed", async () => {
  const types = ["   ", " text/plain "];
  let n = 0;
  const { target, client, channels } = ship({
    onFrame: (ws, f) => {
      if (!("id" in f)) return;
      ws.send(encodeAnswer({ id: f.id, status: 200, type: types[n++ % types.length]!, body: "ok" }));
    },
  });
  await client.execPython(target, { code: "1", timeout: 30 });
  await untilOpen(channels);
  n = 0;
  const app = new Hono();
  app.use((c, next) => {
    c.set("requestId", "req-2");
    return next();
  });
  const answers: Response[] = [];
  app.get("/:i", (c) => relay(c, answers[Number(c.req.param("i"))]!));
  for (let i = 0; i < types.length; i++) answers.push(await client.execPython(target, { code: "1", timeout: 30 }));
  const contentTypes = (h: Headers) => {
    const all: string[] = [];
    h.forEach((v, name) => {
      if (name === "content-type") all.push(v);
    });
    return all;
  };
  const blank = await app.request("/0");
  expect(contentTypes(blank.headers).length).toBeLessThanOrEqual(1);
  expect(contentTypes(blank.headers).every((v) => v.trim() !== "")).toBe(true);
  const padded = await app.request("/1");
  expect(contentTypes(padded.headers)).toEqual(["text/plain"]);
  expect(await padded.text()).toBe("ok");
});
