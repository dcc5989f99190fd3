/**
 * The link between Bay and Ship for a WebSocket to a server in the sandbox,
 * once the server accepted (`{"type":"open"}`): every frame is binary, its
 * first byte a tag. TEXT and BINARY carry one of the client's or the server's
 * messages unchanged; ACK gives back credit, both ways. The link itself is
 * always read by both ends (so acknowledgements and closes always arrive).
 *
 * Server to client: Ship sends the server's messages only while less than
 * WINDOW_BYTES of them are unacknowledged, and Bay acknowledges a message once
 * its client's socket has taken it, so a client that reads slowly holds the
 * server's messages in the Ship (bounded: SHIP_BACKLOG_BYTES), never in Bay.
 *
 * Client to server: Bay stops reading from its client (Bun's ServerWebSocket
 * pause()) while more than WINDOW_BYTES of the client's messages are
 * unacknowledged, and resumes under RESUME_AT_BYTES; Ship acknowledges them as
 * the server's socket takes them, and TCP carries the wait back to the client.
 * What Bay read before its pause took effect still passes; past
 * SEND_HIGH_WATER queued towards a side that stopped taking anything, the
 * socket is closed (1008).
 */

import { MAX_FRAME_BYTES } from "../websocket.ts";

export const TAG = { text: 0, binary: 1, ack: 2 } as const;

/** The largest link frame: the largest message and its tag. */
export const LINK_FRAME_BYTES = MAX_FRAME_BYTES + 1;

/** Unacknowledged server bytes in flight between Ship and Bay's client. */
export const WINDOW_BYTES = 1024 * 1024;
/** Server messages Ship holds for a client that reads slowly, before it closes the socket (1008). */
export const SHIP_BACKLOG_BYTES = 32 * 1024 * 1024;
/** Where a paused client is read again. */
export const RESUME_AT_BYTES = 256 * 1024;
/** Bytes queued towards a side that does not take them, before the socket is closed (1008). */
export const SEND_HIGH_WATER = 8 * 1024 * 1024;

/** Close codes: normal, protocol error, policy (a side fell too far behind), message too big, bad gateway (the server vanished). */
export const CLOSE = { normal: 1000, protocol: 1002, policy: 1008, tooBig: 1009, badGateway: 1014 } as const;

export type Message = string | Uint8Array;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export const messageBytes = (m: Message): number => (typeof m === "string" ? Buffer.byteLength(m) : m.byteLength);

/** A message as a link frame. */
export function encodeMessage(m: Message): Uint8Array {
  const body = typeof m === "string" ? encoder.encode(m) : m;
  const frame = new Uint8Array(body.byteLength + 1);
  frame[0] = typeof m === "string" ? TAG.text : TAG.binary;
  frame.set(body, 1);
  return frame;
}

export function encodeAck(bytes: number): Uint8Array {
  const frame = new Uint8Array(5);
  frame[0] = TAG.ack;
  new DataView(frame.buffer).setUint32(1, bytes);
  return frame;
}

export type LinkFrame = { kind: "message"; message: Message } | { kind: "ack"; bytes: number };

/** A link frame, or null when it is not one (a text frame, an unknown tag, bad UTF-8 in a text message). */
export function decodeFrame(data: string | Uint8Array | ArrayBuffer): LinkFrame | null {
  if (typeof data === "string") return null;
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (bytes.byteLength === 0) return null;
  const body = bytes.subarray(1);
  switch (bytes[0]) {
    case TAG.binary:
      return { kind: "message", message: body };
    case TAG.text:
      try {
        return { kind: "message", message: decoder.decode(body) };
      } catch {
        return null;
      }
    case TAG.ack:
      return body.byteLength === 4 ? { kind: "ack", bytes: new DataView(body.buffer, body.byteOffset, 4).getUint32(0) } : null;
    default:
      return null;
  }
}

/** A code a client WebSocket may send (the WebSocket API allows 1000 and 3000-4999 only). */
export const clientCloseCode = (code: number): number => (code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000);

/** A code a server socket may send: any that can appear in a close frame; others (1005: none given) become 1000. */
export const serverCloseCode = (code: number): number =>
  (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999) ? code : 1000;

/** A close reason cut to what a close frame holds (123 bytes). */
export function closeReason(text: string): string {
  let out = text.slice(0, 123);
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}
