/**
 * Bay's half of a WebSocket to a server in the sandbox: the client's socket on
 * one side, the Ship's link (already proven, the server's handshake accepted)
 * on the other (src/protocol/ship/port-socket-frames.ts). Messages pass
 * unchanged both ways, and each side's close code and reason reach the other.
 *
 * Nothing piles up in Bay: a server message is acknowledged to the Ship once
 * the client's socket has taken it (its send buffer below a mark), and the Ship
 * sends no more than its window unacknowledged. Client messages go to the Ship;
 * while its link has too many queued, Bay stops reading from the client (TCP
 * then slows the client), and a link that stopped taking anything (a runtime
 * stopped from inside the sandbox) closes the socket (1008). Held like a terminal while open:
 * when the sandbox's runtime goes away under it, the client is closed with 1011
 * and the error's code as the reason.
 */
import {
  CLOSE,
  clientCloseCode,
  closeReason,
  decodeFrame,
  encodeAck,
  encodeMessage,
  type Message,
  messageBytes,
  type Pausable,
  ReadGate,
  SEND_HIGH_WATER,
  serverCloseCode,
} from "../../protocol/ship/port-socket-frames.ts";
import { BayError } from "../errors.ts";
import type { ShipSocket } from "../runtime/ship-socket.ts";
import { channelLost, type OpenChannel } from "./open-streams.ts";

/** The client's socket, as the bridge needs it (Bun's ServerWebSocket fits). */
export interface PortPeer extends Pausable {
  send(data: Message): number;
  close(code?: number, reason?: string): void;
  getBufferedAmount(): number;
}

/** Bytes queued for the client before Bay stops acknowledging the server's messages. */
const CLIENT_HIGH_WATER = 256 * 1024;

export class PortSocketBridge implements OpenChannel {
  readonly closed: Promise<void>;
  /** The subprotocol the server chose ("" for none). */
  readonly protocol: string;
  private resolveClosed!: () => void;
  private readonly ship: WebSocket;
  private peer: PortPeer | null = null;
  /** Stops reading from the client while the Ship's link has too much of its messages queued. */
  private gate: ReadGate | null = null;
  /** Server messages that arrived before the client's socket opened (at most the Ship's window). */
  private early: Message[] = [];
  private toAck = 0;
  private held = 0;
  private ackScheduled = false;
  private ended = false;
  private lostListener: (() => void) | null = null;
  /** How the Ship's link closed before the client's socket opened. */
  private shipClose: { code: number; reason: string } | null = null;

  constructor(link: ShipSocket) {
    this.protocol = link.protocol;
    this.ship = link.ws;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.ship.binaryType = "arraybuffer";
    this.ship.onmessage = (e) => this.fromShip(e.data as ArrayBuffer | string);
    this.ship.onclose = (e) => this.shipClosed(e.code, e.reason);
    this.ship.onerror = () => {};
  }

  /** Attaches the client once its WebSocket is open; what the server sent meanwhile goes first. */
  attach(peer: PortPeer): void {
    if (this.ended) {
      peer.close(CLOSE.normal, "");
      return;
    }
    this.peer = peer;
    this.gate = new ReadGate(peer, () => this.ship.bufferedAmount);
    for (const m of this.early.splice(0)) this.toClient(m);
    if (this.shipClose) this.shipClosed(this.shipClose.code, this.shipClose.reason);
    else if (this.ship.readyState !== WebSocket.OPEN) this.shipClosed(1006, "");
  }

  /** A message from the client. */
  fromClient(data: Message): void {
    if (this.ended || this.ship.readyState !== WebSocket.OPEN) return;
    const frame = encodeMessage(data);
    if (this.ship.bufferedAmount + frame.byteLength > SEND_HIGH_WATER) {
      this.close(CLOSE.policy, "the sandbox's runtime is not taking messages");
      return;
    }
    this.ship.send(frame);
    this.gate?.check();
  }

  /** The client's send buffer drained: what was held is acknowledged. */
  drained(): void {
    if (!this.peer || this.peer.getBufferedAmount() > CLIENT_HIGH_WATER) return;
    this.toAck += this.held;
    this.held = 0;
    this.flushAck();
  }

  /** The client closed with `code`: the Ship's link (and the server's socket) is closed alike. */
  clientClosed(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.peer = null;
    this.gate?.stop();
    this.closeShip(clientCloseCode(code), reason);
    this.resolveClosed();
  }

  /** Ends the socket because its sandbox's runtime went away. */
  end(error: BayError): void {
    this.close(1011, JSON.stringify({ code: error.code }));
  }

  onUpstreamLost(fn: () => void): void {
    this.lostListener = fn;
  }

  private fromShip(data: ArrayBuffer | string): void {
    if (this.ended) return;
    const frame = decodeFrame(data);
    if (frame?.kind !== "message") {
      this.end(new BayError("ship_error", "the sandbox runtime sent an invalid frame", { details: { reason: "bad_frame" } }));
      return;
    }
    if (!this.peer) this.early.push(frame.message);
    else this.toClient(frame.message);
  }

  private toClient(message: Message): void {
    const peer = this.peer!;
    peer.send(message);
    const size = messageBytes(message);
    if (this.held > 0 || peer.getBufferedAmount() > CLIENT_HIGH_WATER) this.held += size;
    else {
      this.toAck += size;
      this.flushAck();
    }
  }

  /** Acknowledgements go out once per turn of the event loop, not per message. */
  private flushAck(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    queueMicrotask(() => {
      this.ackScheduled = false;
      if (this.toAck > 0 && !this.ended && this.ship.readyState === WebSocket.OPEN) this.ship.send(encodeAck(this.toAck));
      this.toAck = 0;
    });
  }

  private shipClosed(code: number, reason: string): void {
    if (this.ended) return;
    if (!this.peer) {
      this.shipClose = { code, reason };
      return;
    }
    if (code !== 1006 && code !== 1015) {
      // The server's close (or the Ship's own 1008/1009/1014), passed on.
      this.close(code, reason);
      return;
    }
    // The runtime went away under the socket: the router says why (end()); close anyway if it cannot.
    channelLost(this, this.lostListener);
  }

  /** Closes both sides with `code` and `reason`. */
  private close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    const peer = this.peer;
    this.peer = null;
    this.gate?.stop();
    this.early = [];
    this.closeShip(clientCloseCode(code), reason);
    try {
      peer?.close(serverCloseCode(code), closeReason(reason));
    } catch {
      // already closed
    }
    this.resolveClosed();
  }

  private closeShip(code: number, reason: string): void {
    if (this.ship.readyState === WebSocket.OPEN || this.ship.readyState === WebSocket.CONNECTING) {
      try {
        this.ship.close(code, closeReason(reason));
      } catch {
        // already closing
      }
    }
  }
}
