/**
 * Bay's half of a terminal: the client's WebSocket on one side, the Ship's on
 * the other. Terminal bytes pass through unchanged both ways; text frames are
 * control messages, checked here (a client may only resize).
 *
 * Nothing piles up in Bay. Ship sends output only while less than its window
 * is unacknowledged, and Bay acknowledges output only once its client's socket
 * has taken it (its send buffer below a high-water mark): a slow client stops
 * acknowledging, the Ship stops the PTY, the programs wait. Input is bounded
 * the other way: keystrokes the Ship's connection has not taken (a runtime that
 * stalled or was stopped from inside the sandbox) stop at a high-water mark, and
 * further input is refused with one `error` message instead of queueing in Bay;
 * error replies to a client that does not read them are not queued either.
 *
 * A client that asks (`input_acks`) is told how much input may be in flight
 * (`{"type":"input_acks","window":n}`, once its runtime counts input) and then
 * how much the shell took (`{"type":"input_ack","bytes":n}`, refused input
 * included): kept within the window, its input is never refused. Acknowledgements
 * are summed while the client does not read them.
 */
import { BayError } from "../errors.ts";
import { channelLost, type OpenChannel } from "./open-streams.ts";

/** The longest text frame read as a control message (a resize is about 40 characters). */
const MAX_CONTROL_CHARS = 1024;

/** The client's socket, as the bridge needs it (the API layer adapts Bun's ServerWebSocket). */
export interface TerminalPeer {
  send(data: string | Uint8Array): void;
  close(code: number, reason: string): void;
  /** Bytes queued for the client and not yet written to its connection. */
  bufferedAmount(): number;
}

/** Client bytes in flight to the client before Bay stops acknowledging output. */
const CLIENT_HIGH_WATER = 256 * 1024;
/** Input queued for the Ship's connection before further input is refused (the Ship's own limit on unread input is 1 MiB). */
export const SHIP_INPUT_HIGH_WATER = 1024 * 1024;
/** Input a client that counts acknowledgements may keep unacknowledged: half of either limit on unread input. */
export const INPUT_WINDOW = 512 * 1024;
const MAX_REASON_BYTES = 123;

/** A close reason (at most 123 bytes in a close frame). */
function reason(value: Record<string, unknown>): string {
  const text = JSON.stringify(value);
  return new TextEncoder().encode(text).byteLength <= MAX_REASON_BYTES ? text : JSON.stringify({ code: value.code ?? "error" });
}

export class TerminalBridge implements OpenChannel {
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private peer: TerminalPeer | null = null;
  /** Output the client took but Bay has not acknowledged to the Ship yet. */
  private toAck = 0;
  private ackScheduled = false;
  /** Output forwarded while the client's buffer was over the mark: acknowledged on drain. */
  private held = 0;
  private over = false;
  private lostListener: (() => void) | null = null;
  /** Whether the shell's exit was seen (then the Ship's close is the normal end). */
  private exited = false;
  /** Set once ended by end(): a client that attaches later is closed with it. */
  private endedWith: BayError | null = null;
  /** Input is being refused (the Ship's connection is over its mark); the client was told once. */
  private refusingInput = false;
  /** The client asked for input acknowledgements; the Ship counts input; the client was told the window. */
  private inputAcks = { asked: false, counted: false, told: false };
  /** Input the shell took (or that was refused) not yet acknowledged to the client. */
  private inputTaken = 0;
  private inputAckScheduled = false;
  /** An error message for a client that was behind on reading, sent once it drains. */
  private heldError: string | null = null;

  constructor(
    private readonly ship: WebSocket,
    private readonly requestId: string,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    ship.binaryType = "arraybuffer";
    ship.onmessage = (e) => this.fromShip(e.data as ArrayBuffer | string);
    ship.onclose = (e) => this.shipClosed(e.code, e.reason);
    ship.onerror = () => {};
  }

  /** The client counts input acknowledgements (asked before it attaches). */
  countInput(): void {
    this.inputAcks.asked = true;
  }

  /** Attaches the client once its WebSocket is open. */
  attach(peer: TerminalPeer): void {
    this.peer = peer;
    if (this.endedWith) this.end(this.endedWith);
    else if (this.ship.readyState !== WebSocket.OPEN) this.shipClosed(1006, "");
    else this.tellInputWindow();
  }

  /** A frame from the client. */
  fromClient(data: string | Uint8Array): void {
    if (typeof data !== "string") {
      if (this.ship.readyState === WebSocket.OPEN) this.toShip(data);
      return;
    }
    let msg: { type?: unknown; cols?: unknown; rows?: unknown } | null = null;
    // A control message is a few dozen bytes: a longer frame is refused unparsed (a 1 MiB frame of
    // nested brackets cost the event loop ~0.4 s to parse, and frames have no rate limit; review s90 M3).
    if (data.length <= MAX_CONTROL_CHARS) {
      try {
        msg = JSON.parse(data);
      } catch {
        msg = null;
      }
    }
    const dim = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 1000;
    if (msg?.type === "resize" && dim(msg.cols) && dim(msg.rows)) {
      if (this.ship.readyState === WebSocket.OPEN) this.toShip(JSON.stringify({ type: "resize", cols: msg.cols, rows: msg.rows }));
      return;
    }
    this.sendError(
      new BayError("validation_error", 'a text frame must be a control message: {"type":"resize","cols":1-1000,"rows":1-1000}', {
        details: { issues: [{ path: "frame", message: "not a resize message" }] },
      }),
    );
  }

  /** The client's send buffer drained: what was held is acknowledged. */
  drained(): void {
    if (!this.peer || this.peer.bufferedAmount() > CLIENT_HIGH_WATER) return;
    if (this.heldError) {
      this.peer.send(this.heldError);
      this.heldError = null;
    }
    this.ackInput(0);
    this.over = false;
    this.toAck += this.held;
    this.held = 0;
    this.flushAck();
  }

  /** The client went away: hang the shell up (the Ship does, when its socket closes). */
  clientClosed(): void {
    this.peer = null;
    this.closeShip();
    this.resolveClosed();
  }

  /** Ends the terminal with an error (its sandbox's runtime went away). */
  end(error: BayError): void {
    this.endedWith = error;
    const peer = this.peer;
    this.peer = null;
    this.closeShip();
    if (peer) {
      this.sendError(error, peer);
      peer.close(1011, reason({ code: error.code }));
    }
    this.resolveClosed();
  }

  /** Registers who learns that the Ship's connection broke (the router, to explain it). */
  onUpstreamLost(fn: () => void): void {
    this.lostListener = fn;
  }

  private fromShip(data: ArrayBuffer | string): void {
    const peer = this.peer;
    if (typeof data === "string") {
      this.shipControl(data);
      return;
    }
    if (!peer) return;
    const bytes = new Uint8Array(data);
    peer.send(bytes);
    if (this.over || peer.bufferedAmount() > CLIENT_HIGH_WATER) {
      this.over = true;
      this.held += bytes.byteLength;
    } else {
      this.toAck += bytes.byteLength;
      this.flushAck();
    }
  }

  private shipControl(text: string): void {
    let msg: { type?: string; error?: Record<string, unknown> } | null = null;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg?.type === "exit") this.exited = true;
    if (msg?.type === "input_acks") {
      this.inputAcks.counted = true;
      this.tellInputWindow();
    } else if (msg?.type === "input_ack") {
      const bytes = (msg as { bytes?: unknown }).bytes;
      if (typeof bytes === "number" && Number.isSafeInteger(bytes) && bytes > 0) this.ackInput(bytes);
    } else if (msg?.type === "exit" || msg?.type === "dropped") {
      // An error held for a client behind on reading goes first: after the exit, nothing more is sent (review s111).
      if (msg.type === "exit" && this.heldError) {
        this.peer?.send(this.heldError);
        this.heldError = null;
      }
      this.peer?.send(text);
    }
    // The Ship's errors (input it could not take) carry this request's id, like Bay's own, and are
    // not queued for a client that does not read them either (review s108: 54 MB queued per client).
    else if (msg?.type === "error" && msg.error)
      this.sendOrHold(JSON.stringify({ type: "error", error: { ...msg.error, request_id: this.requestId } }));
  }

  /**
   * Terminal input (or a resize) for the Ship, unless its connection has not taken what was sent
   * before: Bun's client WebSocket queues whatever it is given, so a Ship that stops
   * reading (stopped with SIGSTOP by the sandbox's own user) would otherwise make a
   * client's input pile up in Bay's memory without end.
   */
  private toShip(data: Uint8Array | string): void {
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (this.ship.bufferedAmount + size > SHIP_INPUT_HIGH_WATER) {
      if (typeof data !== "string") this.ackInput(size);
      if (!this.refusingInput) {
        this.refusingInput = true;
        this.sendError(
          new BayError("payload_too_large", "the sandbox's runtime is not taking terminal input; input is dropped until it does", {
            details: { limit_bytes: SHIP_INPUT_HIGH_WATER, size },
          }),
        );
      }
      return;
    }
    this.refusingInput = false;
    this.ship.send(data);
  }

  /** An `error` control message: the error body's `error` (not queued for a client that is not reading). */
  private sendError(error: BayError, peer: TerminalPeer | null = this.peer): void {
    const body = { code: error.code, message: error.message, request_id: this.requestId, details: error.details };
    this.sendOrHold(JSON.stringify({ type: "error", error: body }), peer);
  }

  /**
   * An error message now, or, for a client behind on reading, the latest one held until it drains:
   * never a queue of them (review s108), and the refusal said once per episode is not lost (review s110).
   */
  private sendOrHold(text: string, peer: TerminalPeer | null = this.peer): void {
    if (!peer) return;
    if (peer === this.peer && peer.bufferedAmount() > CLIENT_HIGH_WATER) this.heldError = text;
    else peer.send(text);
  }

  /** Once both sides count input: the window, before any acknowledgement. */
  private tellInputWindow(): void {
    const acks = this.inputAcks;
    if (acks.told || !acks.asked || !acks.counted || !this.peer) return;
    acks.told = true;
    this.peer.send(JSON.stringify({ type: "input_acks", window: INPUT_WINDOW }));
  }

  /**
   * `bytes` more input taken or refused: acknowledged to a client that counts it once per turn of
   * the event loop (not per frame), and summed while it does not read.
   */
  private ackInput(bytes: number): void {
    if (!this.inputAcks.told || !this.peer) return;
    this.inputTaken += bytes;
    if (this.inputAckScheduled) return;
    this.inputAckScheduled = true;
    queueMicrotask(() => {
      this.inputAckScheduled = false;
      const peer = this.peer;
      if (this.inputTaken === 0 || !peer || peer.bufferedAmount() > CLIENT_HIGH_WATER) return;
      peer.send(JSON.stringify({ type: "input_ack", bytes: this.inputTaken }));
      this.inputTaken = 0;
    });
  }

  /** Acknowledgements go out once per turn of the event loop, not per frame. */
  private flushAck(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    queueMicrotask(() => {
      this.ackScheduled = false;
      if (this.toAck > 0 && this.ship.readyState === WebSocket.OPEN) this.ship.send(JSON.stringify({ type: "ack", bytes: this.toAck }));
      this.toAck = 0;
    });
  }

  private shipClosed(code: number, why: string): void {
    const peer = this.peer;
    if (!peer) return;
    if (this.exited || code === 1000) {
      // The shell ended: pass its exit status on (after an error held for a client behind on reading: review s112).
      this.peer = null;
      if (this.heldError) peer.send(this.heldError);
      this.heldError = null;
      peer.close(1000, why || reason({ exit_code: null, signal: null }));
      this.resolveClosed();
      return;
    }
    // The runtime went away under the terminal: the router says why (end()); close anyway if it cannot.
    channelLost(this, this.lostListener);
  }

  private closeShip(): void {
    if (this.ship.readyState === WebSocket.OPEN || this.ship.readyState === WebSocket.CONNECTING) {
      try {
        this.ship.close(1000, "client closed");
      } catch {
        // already closing
      }
    }
  }
}
