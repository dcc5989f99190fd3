/**
 * Ship's half of a WebSocket to a server in the sandbox, once the server
 * accepted: the server's socket (a client WebSocket Ship opened) on one side,
 * Bay's link on the other (src/protocol/ship/port-socket-frames.ts). The
 * server's messages go to Bay while less than the window is unacknowledged;
 * beyond it they wait here, up to the backlog. Bay's messages go to the server,
 * and are acknowledged to Bay as its socket takes them (Bay stops reading its
 * client meanwhile). Bay's link is always read, so its acknowledgements and
 * its close always arrive. Each side's close reaches the other, the
 * server's after what it sent before it.
 */
import {
  CLOSE,
  clientCloseCode,
  closeReason,
  decodeFrame,
  encodeMessage,
  type Message,
  encodeAck,
  messageBytes,
  SEND_HIGH_WATER,
  SHIP_BACKLOG_BYTES,
  serverCloseCode,
  WINDOW_BYTES,
} from "../../protocol/ship/port-socket-frames.ts";
import { MAX_FRAME_BYTES } from "../../protocol/websocket.ts";
import type { ShipSocket } from "../ws.ts";

/** What a queued message costs besides its bytes (its object and slot), counted against the backlog. */
const MESSAGE_OVERHEAD = 64;

export class PortRelay {
  /** Server messages waiting for credit, from `head` on (a queue without shift()'s cost per message). */
  private backlog: Message[] = [];
  private head = 0;
  /** Their bytes, each counted with MESSAGE_OVERHEAD so that many tiny messages are bounded too. */
  private backlogBytes = 0;
  private unacked = 0;
  private ended = false;
  /** The server closed: Bay's link closes with this once the backlog is sent. */
  private closing: { code: number; reason: string } | null = null;
  /** The client's message bytes sent to the server, and those acknowledged to Bay as the server's socket took them. */
  private toServer = 0;
  private toServerAcked = 0;
  private ackTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly server: WebSocket,
    private readonly bay: ShipSocket,
  ) {
    server.binaryType = "arraybuffer";
    server.onmessage = (e) => this.fromServer(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
    // Without a close frame (1006) the server vanished: Bay's client learns it as a bad gateway.
    server.onclose = (e) =>
      this.serverClosed(e.code === 1006 ? CLOSE.badGateway : e.code, e.code === 1006 ? "the server's connection was lost" : e.reason);
    server.onerror = () => {};
  }

  /** A frame on Bay's link. */
  fromBay(data: string | Uint8Array): void {
    if (this.ended) return;
    const frame = decodeFrame(data);
    if (!frame) {
      this.close(CLOSE.protocol, "not a link frame");
      return;
    }
    if (frame.kind === "ack") {
      this.unacked = Math.max(0, this.unacked - frame.bytes);
      this.pump();
      return;
    }
    if (this.server.readyState !== WebSocket.OPEN) return;
    if (this.server.bufferedAmount + messageBytes(frame.message) > SEND_HIGH_WATER) {
      this.close(CLOSE.policy, "the server is not taking messages");
      return;
    }
    this.server.send(frame.message);
    this.toServer += messageBytes(frame.message);
    this.ackClient();
  }

  /**
   * Acknowledges to Bay what the server's socket has taken of the client's messages
   * (a client WebSocket has no drain event: while some is left it is looked at
   * every few milliseconds).
   */
  private ackClient(): void {
    if (this.ended) return;
    const taken = this.toServer - this.server.bufferedAmount;
    if (taken > this.toServerAcked) {
      this.bay.send(encodeAck(taken - this.toServerAcked));
      this.toServerAcked = taken;
    }
    if (this.toServerAcked < this.toServer) this.ackTimer ??= setInterval(() => this.ackClient(), 5);
    else this.stopAcks();
  }

  private stopAcks(): void {
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.ackTimer = null;
  }

  /** Bay's link closed with `code`: the server's socket is closed alike. */
  bayClosed(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.stopAcks();
    this.closeServer(clientCloseCode(code), reason);
  }

  private fromServer(message: Message): void {
    if (this.ended || this.closing) return;
    const size = messageBytes(message);
    if (size > MAX_FRAME_BYTES) {
      this.close(CLOSE.tooBig, `a message over ${MAX_FRAME_BYTES} bytes`);
      return;
    }
    this.backlogBytes += size + MESSAGE_OVERHEAD;
    if (this.backlogBytes > SHIP_BACKLOG_BYTES) {
      this.close(CLOSE.policy, "the client is not taking messages");
      return;
    }
    this.backlog.push(message);
    this.pump();
  }

  private pump(): void {
    while (!this.ended && this.head < this.backlog.length && this.unacked < WINDOW_BYTES) {
      const message = this.backlog[this.head++]!;
      const size = messageBytes(message);
      this.backlogBytes -= size + MESSAGE_OVERHEAD;
      this.unacked += size;
      this.bay.send(encodeMessage(message));
    }
    if (this.head > 1024 && this.head * 2 > this.backlog.length) {
      this.backlog = this.backlog.slice(this.head);
      this.head = 0;
    }
    if (this.closing && this.head >= this.backlog.length) this.close(this.closing.code, this.closing.reason);
  }

  private serverClosed(code: number, reason: string): void {
    if (this.ended || this.closing) return;
    this.closing = { code: serverCloseCode(code), reason };
    this.pump();
  }

  /** Closes both sides. */
  private close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.stopAcks();
    this.backlog = [];
    this.head = 0;
    this.closeServer(clientCloseCode(code), reason);
    try {
      this.bay.close(serverCloseCode(code), closeReason(reason));
    } catch {
      // already closed
    }
  }

  private closeServer(code: number, reason: string): void {
    if (this.server.readyState === WebSocket.OPEN || this.server.readyState === WebSocket.CONNECTING) {
      try {
        this.server.close(code, closeReason(reason));
      } catch {
        // already closing
      }
    }
  }
}
