/**
 * WebSockets in Ship: Bun upgrades the connection itself, so a route hands Bun
 * the per-connection handlers and this one `websocket` object (passed to
 * Bun.serve) dispatches every event to them. Hono's own Bun helper has no
 * `drain` event, which backpressure needs.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { Context } from "hono";
import { ShipError } from "./errors.ts";

/** What a route does with one connection. */
export interface SocketHandlers {
  open?(ws: ShipSocket): void;
  message?(ws: ShipSocket, data: string | Uint8Array): void;
  /** The socket's send buffer emptied after a send that had to wait. */
  drain?(ws: ShipSocket): void;
  close?(ws: ShipSocket, code: number, reason: string): void;
}

export type ShipSocket = ServerWebSocket<{ handlers: SocketHandlers }>;

/** Largest frame Ship accepts (terminal input and control messages are small). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** The handler object for Bun.serve's `websocket` option. */
export const websocket: WebSocketHandler<{ handlers: SocketHandlers }> = {
  maxPayloadLength: MAX_FRAME_BYTES,
  // Backpressure is the routes' business (they watch getBufferedAmount and drain);
  // the server never drops or closes on its own.
  backpressureLimit: 64 * 1024 * 1024,
  closeOnBackpressureLimit: true,
  // Pings keep an idle terminal's connection alive and find a peer that vanished.
  idleTimeout: 120,
  sendPings: true,
  open: (ws) => ws.data.handlers.open?.(ws),
  message: (ws, data) => ws.data.handlers.message?.(ws, data),
  drain: (ws) => ws.data.handlers.drain?.(ws),
  close: (ws, code, reason) => ws.data.handlers.close?.(ws, code, reason),
};

/** True when the request asks to upgrade to a WebSocket. */
export const isUpgrade = (req: Request): boolean => (req.headers.get("upgrade") ?? "").toLowerCase() === "websocket";

/** Upgrades the request to a WebSocket served by `handlers`; throws validation_error when it is not an upgrade. */
export function upgrade(c: Context, handlers: SocketHandlers): Response {
  const server = c.env as Server<{ handlers: SocketHandlers }> | undefined;
  if (!isUpgrade(c.req.raw) || typeof server?.upgrade !== "function" || !server.upgrade(c.req.raw, { data: { handlers } })) {
    throw new ShipError("validation_error", "expected a WebSocket upgrade request");
  }
  // Bun has taken the connection over; this response is never sent.
  return new Response(null);
}
