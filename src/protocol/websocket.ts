/**
 * WebSockets in Bay and in Ship alike: Bun upgrades the connection itself, so a route
 * hands Bun the per-connection handlers and one `websocket` object (Bun.serve's option)
 * dispatches every event to them. Hono's own Bun helper has no `drain` event, which
 * backpressure needs.
 */
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { Context } from "hono";

/** What a route does with one connection. */
export interface SocketHandlers {
  open?(ws: HandledSocket): void;
  message?(ws: HandledSocket, data: string | Uint8Array): void;
  /** The send buffer emptied after a send had to wait. */
  drain?(ws: HandledSocket): void;
  close?(ws: HandledSocket, code: number, reason: string): void;
}

export type HandledSocket = ServerWebSocket<{ handlers: SocketHandlers }>;

/** Largest frame accepted from a peer (terminal input and control messages are small). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Bun.serve's `websocket` option. */
export const websocket: WebSocketHandler<{ handlers: SocketHandlers }> = {
  maxPayloadLength: MAX_FRAME_BYTES,
  // Routes bound what they queue (they watch getBufferedAmount and drain); this is a last stop.
  backpressureLimit: 64 * 1024 * 1024,
  closeOnBackpressureLimit: true,
  // Pings keep an idle terminal open through proxies and find peers that vanished.
  idleTimeout: 120,
  sendPings: true,
  open: (ws) => ws.data.handlers.open?.(ws),
  message: (ws, data) => ws.data.handlers.message?.(ws, data),
  drain: (ws) => ws.data.handlers.drain?.(ws),
  close: (ws, code, reason) => ws.data.handlers.close?.(ws, code, reason),
};

/** True when the request asks to upgrade to a WebSocket. */
export const isUpgradeRequest = (req: Request): boolean => (req.headers.get("upgrade") ?? "").toLowerCase() === "websocket";

/**
 * Whether an upgrade request's handshake is one Bun will take (version 13, a key of
 * 16 bytes in base64): checked before a route does any work for it.
 */
export const handshakeValid = (req: Request): boolean =>
  req.headers.get("sec-websocket-version") === "13" && /^[A-Za-z0-9+/]{22}==$/.test(req.headers.get("sec-websocket-key") ?? "");

/** Upgrades the request; false when Bun refused (not served by Bun.serve with `websocket`, or a bad handshake). */
export function upgradeToWebSocket(c: Context, handlers: SocketHandlers, headers?: Record<string, string>): boolean {
  const server = c.env as Server<{ handlers: SocketHandlers }> | undefined;
  if (typeof server?.upgrade !== "function") return false;
  return server.upgrade(c.req.raw, { data: { handlers }, ...(headers ? { headers } : {}) });
}
