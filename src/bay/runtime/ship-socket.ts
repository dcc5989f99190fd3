/**
 * WebSockets to a Ship: the terminal's attach and a server's WebSocket in the
 * sandbox. A WebSocket client cannot read the handshake's headers, where other
 * answers carry Ship's proof, so the Ship's first frame must be
 * `{"type":"proof","proof":…}` for the nonce sent with the upgrade; a socket
 * that does not prove it is this session's never reaches the client
 * (ShipWrongSessionError). A server's WebSocket then waits for one more text
 * frame: `{"type":"open","protocol":…}` once the server accepted, or
 * `{"type":"error","error":{…}}` in Ship's error model.
 */
import { NONCE_HEADER, newNonce, proofValid, shipBearer } from "../../protocol/ship/auth.ts";
import { BayError } from "../errors.ts";
import { shipWebSocketUrl } from "./endpoint.ts";
import { ShipBadResponseError } from "./errors/ship-bad-response-error.ts";
import { ShipTimeoutError } from "./errors/ship-timeout-error.ts";
import { ShipUnreachableError } from "./errors/ship-unreachable-error.ts";
import { ShipWrongSessionError } from "./errors/ship-wrong-session-error.ts";
import type { CallOptions, ShipTarget } from "./ship-call.ts";
import { fromShipErrorBody } from "./ship-errors.ts";

export interface ShipSocketOptions {
  deadlineMs: number;
  /** Headers for the Ship besides its credentials. */
  headers?: Record<string, string>;
  /** Wait for the Ship's `open` (or `error`) frame after the proof. */
  awaitOpen?: boolean;
}

export interface ShipSocket {
  ws: WebSocket;
  /** The subprotocol the server chose ("" for none, and for a terminal). */
  protocol: string;
}

const parse = (data: unknown): Record<string, unknown> | null => {
  if (typeof data !== "string") return null;
  try {
    const v = JSON.parse(data);
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
};

/** Opens a WebSocket to `path` on the session's Ship; resolves once it proved itself (and, if asked, the server accepted). */
export function openShipSocket(t: ShipTarget, path: string, o: CallOptions, opts: ShipSocketOptions): Promise<ShipSocket> {
  const nonce = newNonce();
  const headers: Record<string, string> = { ...opts.headers, authorization: `Bearer ${shipBearer(t.secret)}`, [NONCE_HEADER]: nonce };
  if (o.requestId) headers["x-request-id"] = o.requestId;
  const url = shipWebSocketUrl(t.endpoint, path);
  return new Promise((resolve, reject) => {
    // Bun's WebSocket takes headers (the browser API does not).
    const ws = new WebSocket(url, { headers } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    let proven = false;
    const settle = () => {
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      ws.onopen = null;
      ws.onmessage = null;
      ws.onerror = null;
      ws.onclose = null;
    };
    const fail = (cause: unknown) => {
      settle();
      try {
        ws.close();
      } catch {
        // not open
      }
      reject(cause);
    };
    const onAbort = () =>
      fail(new BayError("timeout", "the client went away; the call was abandoned", { details: { reason: "client_gone" } }));
    const timer = setTimeout(() => fail(new ShipTimeoutError(opts.deadlineMs)), opts.deadlineMs);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    ws.onmessage = (e) => {
      const msg = parse(e.data);
      if (!proven) {
        if (!proofValid(t.secret, nonce, msg?.type === "proof" && typeof msg.proof === "string" ? msg.proof : null)) {
          // Not the session's Ship: nothing it sends reaches the client.
          fail(new ShipWrongSessionError());
          return;
        }
        proven = true;
        if (!opts.awaitOpen) {
          settle();
          resolve({ ws, protocol: "" });
        }
        return;
      }
      if (msg?.type === "open" && typeof msg.protocol === "string") {
        settle();
        resolve({ ws, protocol: msg.protocol });
      } else if (msg?.type === "error") fail(fromShipErrorBody(msg, null));
      else fail(new ShipBadResponseError("sandbox runtime sent an unexpected frame before the server's WebSocket opened"));
    };
    ws.onerror = (e) => fail(new ShipUnreachableError((e as ErrorEvent).error ?? e));
    ws.onclose = () =>
      fail(
        proven ? new ShipBadResponseError("sandbox runtime closed the WebSocket before the server's answer") : new ShipWrongSessionError(),
      );
  });
}
