/**
 * Bay's half of a server's WebSocket (src/bay/domain/port-socket-bridge.ts), with
 * a stand-in for the Ship's link and the client's socket: client messages are
 * read only while the Ship acknowledges them, and a server that takes nothing
 * ends the socket instead of holding a paused client (whose close Bay cannot
 * read) for ever.
 */
import { describe, expect, test } from "bun:test";
import { PortSocketBridge } from "../../src/bay/domain/port-socket-bridge.ts";
import { decodeFrame, encodeAck, encodeMessage } from "../../src/protocol/ship/port-socket-frames.ts";

function fakeLink() {
  const sent: Uint8Array[] = [];
  const ws = {
    readyState: WebSocket.OPEN as number,
    bufferedAmount: 0,
    binaryType: "arraybuffer",
    onmessage: null as ((e: { data: unknown }) => void) | null,
    onclose: null as ((e: { code: number; reason: string }) => void) | null,
    onerror: null as unknown,
    send: (f: Uint8Array) => void sent.push(f),
    close: () => {
      ws.readyState = WebSocket.CLOSED;
    },
  };
  return { ws, sent, fromShip: (f: Uint8Array) => ws.onmessage?.({ data: f.slice().buffer }) };
}

function fakePeer() {
  const peer = {
    paused: false,
    closed: null as { code?: number; reason?: string } | null,
    got: [] as unknown[],
    send: (m: unknown) => {
      peer.got.push(m);
      return 1;
    },
    close: (code?: number, reason?: string) => {
      peer.closed = { code, reason };
    },
    getBufferedAmount: () => 0,
    pause: () => {
      peer.paused = true;
    },
    resume: () => {
      peer.paused = false;
    },
  };
  return peer;
}

describe("client messages and their credit", () => {
  test("past the window the client is paused; the Ship's acknowledgements resume it; server messages are acknowledged as taken", async () => {
    const link = fakeLink();
    const bridge = new PortSocketBridge({ ws: link.ws as unknown as WebSocket, protocol: "" }, 60_000);
    const peer = fakePeer();
    bridge.attach(peer);
    const mib = new Uint8Array(1024 * 1024);
    bridge.fromClient(mib);
    expect(peer.paused).toBe(false);
    bridge.fromClient(new Uint8Array(10));
    expect(peer.paused).toBe(true);
    expect(link.sent.map((f) => decodeFrame(f)?.kind)).toEqual(["message", "message"]);
    link.fromShip(encodeAck(512 * 1024));
    expect(peer.paused).toBe(true);
    link.fromShip(encodeAck(512 * 1024));
    expect(peer.paused).toBe(false);
    // A server message reaches the client and is acknowledged to the Ship (once per turn).
    link.fromShip(encodeMessage("hi"));
    expect(peer.got).toEqual(["hi"]);
    await Bun.sleep(0);
    expect(decodeFrame(link.sent.at(-1)!)).toEqual({ kind: "ack", bytes: 2 });
    bridge.clientClosed(1000, "");
  });

  test("a paused client whose server takes nothing in time: the socket closes with 1008, both sides", async () => {
    const link = fakeLink();
    const bridge = new PortSocketBridge({ ws: link.ws as unknown as WebSocket, protocol: "" }, 50);
    const peer = fakePeer();
    bridge.attach(peer);
    bridge.fromClient(new Uint8Array(1024 * 1024 + 1));
    expect(peer.paused).toBe(true);
    await Bun.sleep(20);
    link.fromShip(encodeAck(1));
    await Bun.sleep(40);
    // Progress pushed the deadline on.
    expect(peer.closed).toBeNull();
    await Bun.sleep(40);
    expect(peer.closed?.code).toBe(1008);
    expect(link.ws.readyState).toBe(WebSocket.CLOSED);
    await bridge.closed;
  });

  test("a frame from the Ship that is not a link frame ends the socket (1011)", () => {
    const link = fakeLink();
    const bridge = new PortSocketBridge({ ws: link.ws as unknown as WebSocket, protocol: "" }, 50);
    const peer = fakePeer();
    bridge.attach(peer);
    link.ws.onmessage?.({ data: '{"type":"open"}' });
    expect(peer.closed).toEqual({ code: 1011, reason: '{"code":"ship_error"}' });
  });
});
