/**
 * WebSockets in Ship: the dispatching `websocket` object is shared with Bay
 * (src/protocol/websocket.ts); this adds Ship's upgrade, which refuses a plain request.
 */
import type { Context } from "hono";
import { LINK_FRAME_BYTES } from "../protocol/ship/port-socket-frames.ts";
import {
  type HandledSocket,
  isUpgradeRequest,
  type SocketHandlers,
  websocket as sharedWebsocket,
  upgradeToWebSocket,
} from "../protocol/websocket.ts";
import { ShipError } from "./errors.ts";

export { MAX_FRAME_BYTES, type SocketHandlers } from "../protocol/websocket.ts";

/**
 * Bun.serve's `websocket` option for Ship: Bay's links only. A message of a server's
 * WebSocket travels tagged (one byte more than the message: port-socket-frames.ts),
 * so a link frame may be one byte over the largest message.
 */
export const websocket = { ...sharedWebsocket, maxPayloadLength: LINK_FRAME_BYTES };

export type ShipSocket = HandledSocket;

/** True when the request asks to upgrade to a WebSocket. */
export const isUpgrade = isUpgradeRequest;

/** Upgrades the request to a WebSocket served by `handlers`; throws validation_error when it is not an upgrade. */
export function upgrade(c: Context, handlers: SocketHandlers): Response {
  if (!isUpgradeRequest(c.req.raw) || !upgradeToWebSocket(c, handlers)) {
    throw new ShipError("validation_error", "expected a WebSocket upgrade request");
  }
  // Bun has taken the connection over; this response is never sent.
  return new Response(null);
}
