/**
 * Bay's half of a WebSocket to a server in the sandbox: the client's socket on
 * one side, the Ship's link (already proven, the server's handshake accepted)
 * on the other (src/protocol/ship/port-socket-frames.ts). Messages pass
 * unchanged both ways, and each side's close code and reason reach the other.
 *
 * Nothing piles up in Bay: a server message is acknowledged to the Ship once
 * the client's socket has taken it (its send buffer below a mark), and the Ship
 * sends no more than its window unacknowledged. The other way round, Bay stops
 * reading from its client while more than the window of the client's messages
 * is unacknowledged by the Ship (TCP then slows the client); a link that stopped
 * taking anything (a runtime stopped from inside the sandbox) closes the socket
 * (1008). Held like a terminal while open:
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
  RESUME_AT_BYTES,
  SEND_HIGH_WATER,
  serverCloseCode,
  WINDOW_BYTES,
} from "../../protocol/ship/port-socket-frames.ts";
import { BayError } from "../errors.ts";
import type { ShipSocket } from "../runtime/ship-socket.ts";
import { channelLost, type OpenChannel } from "./open-streams.ts";

/** The client's socket, as the bridge needs it (Bun's ServerWebSocket fits). */
export interface PortPeer {
  send(data: Message): number;
  /** Stops and starts reading from the client's socket (TCP then slows the client). */
  pause(): void;
  resume(): void;
  close(code?: number, reason?: string): void;
  getBufferedAmount(): number;
}

/** How long a paused client waits for the server to take anything before the socket is closed (1008). */
const STALL_MS = 60_000;
/** Bytes queued for the client before Bay stops acknowledging the server's messages. */
const CLIENT_HIGH_WATER = 256 * 1024;

export class PortSocketBridge implements OpenChannel {
  readonly closed: Promise<void>;
  /** The subprotocol the server chose ("" for none). */
  readonly protocol: string;
  private resolveClosed!: () => void;
  private readonly ship: WebSocket;
  private peer: PortPeer | null = null;
  /** The client's message bytes sent to the Ship and not yet acknowledged (the server's socket has not taken them). */
  private clientUnacked = 0;
  private clientPaused = false;
  /** While the client is paused: ends a socket whose server takes nothing for STALL_MS (a paused client's close is not read either). */
  private stallTimer: ReturnType<typeof setTimeout> | null = null;
  /** Server messages that arrived before the client's socket opened (at most the Ship's window). */
  private early: Message[] = [];
  private toAck = 0;
  private held = 0;
  private ackScheduled = false;
  private ended = false;
  private lostListener: (() => void) | null = null;
  /** How the Ship's link closed before the client's socket opened. */
  private shipClose: { code: number; reason: string } | null = null;

  constructor(
    link: ShipSocket,
    private readonly stallMs = STALL_MS,
  ) {
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
    this.clientUnacked += messageBytes(data);
    if (this.clientUnacked > WINDOW_BYTES && !this.clientPaused) {
      this.clientPaused = true;
      this.peer?.pause();
      this.watchStall();
    }
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
    this.stopStallWatch();
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
    if (frame?.kind === "ack") {
      this.clientUnacked = Math.max(0, this.clientUnacked - frame.bytes);
      if (this.clientPaused) this.watchStall();
      if (this.clientPaused && this.clientUnacked <= RESUME_AT_BYTES) {
        this.clientPaused = false;
        this.stopStallWatch();
        this.peer?.resume();
      }
      return;
    }
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

  /** (Re)starts the stall deadline: the server took nothing of the paused client's messages since. */
  private watchStall(): void {
    this.stopStallWatch();
    this.stallTimer = setTimeout(() => this.close(CLOSE.policy, "the server took none of the client's messages in time"), this.stallMs);
    this.stallTimer.unref?.();
  }

  private stopStallWatch(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
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
    this.stopStallWatch();
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
