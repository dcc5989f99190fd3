/**
 * WebSockets in Bay: the dispatching `websocket` object and upgrade helpers are shared
 * with Ship (src/protocol/websocket.ts); this adds Bay's error for a non-upgrade.
 */
import { BayError } from "../errors.ts";
import type { HandledSocket } from "../../protocol/websocket.ts";

export {
  handshakeValid,
  isUpgradeRequest,
  MAX_FRAME_BYTES,
  type SocketHandlers,
  upgradeToWebSocket,
  websocket,
} from "../../protocol/websocket.ts";

export type BaySocket = HandledSocket;

/** The error for a request to a WebSocket route that is not an upgrade. */
export const notAnUpgrade = () =>
  new BayError("validation_error", "this route is a WebSocket: send an upgrade request (Connection: Upgrade, Upgrade: websocket)", {
    details: { issues: [{ path: "headers.upgrade", message: "must be websocket" }] },
  });

/** The error for an upgrade whose handshake Bun would refuse (checked before any work is done for it). */
export const badHandshake = () =>
  new BayError("validation_error", "not a valid WebSocket handshake: it needs Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key", {
    details: { issues: [{ path: "headers.sec-websocket-key", message: "missing or not 16 bytes in base64, or version not 13" }] },
  });
