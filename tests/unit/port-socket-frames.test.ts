/** The Bay-Ship link of a server's WebSocket: tagged frames, and close codes each WebSocket side may send. */
import { describe, expect, test } from "bun:test";
import {
  clientCloseCode,
  closeReason,
  decodeFrame,
  encodeAck,
  encodeMessage,
  serverCloseCode,
  TAG,
} from "../../src/protocol/ship/port-socket-frames.ts";

describe("link frames", () => {
  test("text and binary messages round-trip, text as text", () => {
    expect(decodeFrame(encodeMessage("héllo ✓"))).toEqual({ kind: "message", message: "héllo ✓" });
    expect(decodeFrame(encodeMessage(""))).toEqual({ kind: "message", message: "" });
    const bytes = new Uint8Array([0, 1, 2, 255]);
    const back = decodeFrame(encodeMessage(bytes).buffer as ArrayBuffer);
    expect(back?.kind).toBe("message");
    expect([...((back as { message: Uint8Array }).message as Uint8Array)]).toEqual([0, 1, 2, 255]);
    expect(decodeFrame(encodeAck(1_048_576))).toEqual({ kind: "ack", bytes: 1_048_576 });
  });

  test("anything else is not a frame: a text frame, an empty one, an unknown tag, a short ack, bad UTF-8 in a text message", () => {
    expect(decodeFrame('{"type":"open"}')).toBeNull();
    expect(decodeFrame(new Uint8Array(0))).toBeNull();
    expect(decodeFrame(new Uint8Array([3, 1]))).toBeNull();
    expect(decodeFrame(new Uint8Array([TAG.ack, 0, 0, 1]))).toBeNull();
    expect(decodeFrame(new Uint8Array([TAG.text, 0xff, 0xfe]))).toBeNull();
  });
});

describe("close codes and reasons", () => {
  test("a client socket sends only 1000 and 3000-4999; a server socket any code a close frame may carry", () => {
    expect([1000, 1001, 1011, 1014, 2999, 3000, 4999, 5000].map(clientCloseCode)).toEqual([1000, 1000, 1000, 1000, 1000, 3000, 4999, 1000]);
    expect([1000, 1001, 1005, 1006, 1009, 1014, 1015, 2000, 3000, 4999, 5000].map(serverCloseCode)).toEqual([
      1000, 1001, 1000, 1000, 1009, 1014, 1000, 1000, 3000, 4999, 1000,
    ]);
  });

  test("a reason is cut to 123 bytes, never inside a character", () => {
    expect(closeReason("bye")).toBe("bye");
    const cut = closeReason("é".repeat(100));
    expect(Buffer.byteLength(cut)).toBe(122);
    expect(cut).toBe("é".repeat(61));
  });
});
