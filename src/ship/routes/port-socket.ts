/**
 * A WebSocket for a server listening inside the sandbox: Ship upgrades Bay's
 * request, proves it is this session's (first frame, as for a terminal), then
 * opens a WebSocket to ws://127.0.0.1:{port}{rest} with the headers and
 * subprotocols Bay passed on. Once the server accepted, Ship says so in one text
 * frame, `{"type":"open","protocol":…}`, and from then on relays messages
 * (port-relay.ts, on the link of src/protocol/ship/port-socket-frames.ts). When the server cannot be reached
 * or refuses the handshake, the frame is `{"type":"error","error":{…}}` in
 * Ship's error model and the socket closes: Bay answers its client with that
 * error before upgrading it.
 */
import type { Context } from "hono";
import { SUBPROTOCOLS_HEADER } from "../../protocol/ship/index.ts";
import { CLOSE } from "../../protocol/ship/port-socket-frames.ts";
import { PortRelay } from "./port-relay.ts";
import type { ShipSocket } from "../ws.ts";
import { upgrade } from "../ws.ts";

/** Bun's words for a 101 that names no subprotocol after the client offered some. */
const NO_PROTOCOL_CHOSEN = /missing client protocol/i;

/** How long the server has to accept the handshake. */
const OPEN_TIMEOUT_MS = 30_000;

export interface PortSocketRequest {
  port: number;
  /** The path and query for the server, starting with "/". */
  rest: string;
  /** Headers for the server (Ship's own removed). */
  headers: Headers;
  /** Subprotocols the client offered, in its order. */
  protocols: string[];
  /** Ship's proof for Bay's nonce, sent first; null when Bay sent none. */
  proof: string | null;
}

/** Headers a WebSocket client sets itself: never passed on as given. */
const HANDSHAKE = new Set([
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  SUBPROTOCOLS_HEADER,
  "upgrade",
  "connection",
  "content-length",
  "transfer-encoding",
]);

/** Whether anything accepts TCP connections on the port (to tell a closed port from a refused handshake). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => {
          s.end();
          resolve(true);
        },
        data: () => {},
        error: () => resolve(false),
        connectError: () => resolve(false),
      },
    }).catch(() => resolve(false));
  });
}

function errorFrame(code: string, message: string, details: Record<string, unknown>): string {
  return JSON.stringify({ type: "error", error: { code, message, details } });
}

export function openPortSocket(c: Context, req: PortSocketRequest): Response {
  const headers: Record<string, string> = {};
  req.headers.forEach((value, name) => {
    if (!HANDSHAKE.has(name)) headers[name] = value;
  });
  let relay: PortRelay | null = null;
  let upstream: WebSocket | null = null;
  let gone = false;
  return upgrade(c, {
    open: (ws: ShipSocket) => {
      if (req.proof) ws.send(JSON.stringify({ type: "proof", proof: req.proof }));
      const deadline = Date.now() + OPEN_TIMEOUT_MS;
      const refuse = (frame: string) => {
        if (gone) return;
        ws.send(frame);
        ws.close(CLOSE.normal, "");
      };
      /**
       * Bun's client fails a handshake whose 101 names no subprotocol when it offered some
       * (a browser accepts it, with protocol ""); so that failure, and only that one, is
       * tried once more without the offer, and a server that ignores subprotocols gets the
       * same answer a browser would. The server then sees the first attempt open and close.
       */
      const attempt = (protocols: string[]) => {
        let up: WebSocket;
        try {
          up = new WebSocket(`ws://127.0.0.1:${req.port}${req.rest}`, { headers, protocols } as unknown as string[]);
        } catch (e) {
          refuse(errorFrame("validation_error", `the WebSocket request cannot be sent on: ${(e as Error).message}`, {}));
          return;
        }
        upstream = up;
        const timer = setTimeout(() => up.close(), Math.max(0, deadline - Date.now()));
        let failure = "";
        up.onerror = (e) => {
          failure = (e as ErrorEvent).message ?? "";
        };
        up.onclose = async () => {
          clearTimeout(timer);
          if (gone) return;
          if (!(await listening(req.port))) {
            refuse(
              errorFrame("conflict", `nothing in the sandbox accepts connections on port ${req.port}`, {
                reason: "port_closed",
                port: req.port,
              }),
            );
          } else if (protocols.length > 0 && NO_PROTOCOL_CHOSEN.test(failure) && Date.now() < deadline) {
            if (!gone) attempt([]);
          } else {
            refuse(
              errorFrame("upstream_error", `the server on port ${req.port} did not accept a WebSocket at this path`, { port: req.port }),
            );
          }
        };
        up.onopen = () => {
          clearTimeout(timer);
          if (gone) {
            up.close();
            return;
          }
          ws.send(JSON.stringify({ type: "open", protocol: up.protocol }));
          relay = new PortRelay(up, ws);
        };
      };
      attempt(req.protocols);
    },
    message: (_ws, data) => relay?.fromBay(data),
    close: (_ws, code, reason) => {
      gone = true;
      if (relay) relay.bayClosed(code, reason);
      else upstream?.close();
    },
  });
}
