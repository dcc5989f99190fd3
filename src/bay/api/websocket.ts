/**
 * WebSockets in Bay: the dispatching `websocket` object and upgrade helpers are shared
 * with Ship (src/protocol/websocket.ts); this adds Bay's error for a non-upgrade.
 */
import { BayError } from "../errors.ts";
import type { HandledSocket } from "../../protocol/websocket.ts";

export {
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
