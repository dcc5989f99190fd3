/**
 * The serving end of Bay's call channel (channel.ts has the frames), for Ship and
 * for the memory driver's fake Ship alike: each call becomes the HTTP request it
 * names, with the channel's credentials, handed to the server's own request
 * handler, so every route, check and error is the one that request would meet.
 * A cancel frame, or the channel closing, aborts that request's signal as a
 * client's disconnect does.
 */
import { CHANNEL_MAX_ANSWER_BYTES, CHANNEL_MAX_IN_FLIGHT, type ChannelCall, encodeAnswer, parseChannelFrame } from "./channel.ts";

import { readBodyUpTo } from "../bounded-body.ts";

type Dispatch = (req: Request) => Response | Promise<Response>;

/** What the channel needs of its WebSocket. */
export interface ChannelPeer {
  send(frame: string): void;
  close(code: number, reason: string): void;
}

function errorFrame(id: number, status: number, code: string, message: string, unrun = false): string {
  const body = JSON.stringify({ error: { code, message, details: {} } });
  return encodeAnswer({ id, status, type: "application/json", body, ...(unrun ? { unrun: true as const } : {}) });
}

/** Headers a call may not set: the body's framing is the frame's own. */
const FRAMING = ["content-length", "transfer-encoding", "authorization"];

/** One open channel: feed it the peer's frames, and tell it when the peer is gone. */
export class ChannelServer {
  private readonly inFlight = new Map<number, AbortController>();
  private closed = false;

  /** `authorization`: the upgrade's own header, which each call carries. */
  constructor(
    private readonly peer: ChannelPeer,
    private readonly dispatch: Dispatch,
    private readonly authorization: string,
    private readonly limits = { maxAnswerBytes: CHANNEL_MAX_ANSWER_BYTES, maxInFlight: CHANNEL_MAX_IN_FLIGHT },
  ) {}

  message(data: string | Uint8Array): void {
    const frame = parseChannelFrame(data);
    if (frame === null) {
      this.peer.close(1008, "not a channel frame");
      return;
    }
    if ("cancel" in frame) {
      this.inFlight.get(frame.cancel)?.abort();
      return;
    }
    if (this.inFlight.has(frame.id)) {
      this.peer.close(1008, "a call id already in flight");
      return;
    }
    if (this.inFlight.size >= this.limits.maxInFlight) {
      this.peer.send(
        errorFrame(frame.id, 429, "quota_exceeded", `more than ${this.limits.maxInFlight} calls at once on the channel`, true),
      );
      return;
    }
    void this.run(frame);
  }

  /** The peer went away: every call in flight is abandoned. */
  close(): void {
    this.closed = true;
    for (const ctl of this.inFlight.values()) ctl.abort();
    this.inFlight.clear();
  }

  private async run(call: ChannelCall): Promise<void> {
    const ctl = new AbortController();
    this.inFlight.set(call.id, ctl);
    let frame: string;
    try {
      const headers = new Headers(call.headers);
      for (const name of FRAMING) headers.delete(name);
      headers.set("authorization", this.authorization);
      const res = await this.dispatch(
        new Request(`http://ship${call.path}`, { method: call.method, headers, body: call.body ?? null, signal: ctl.signal }),
      );
      const bytes = await readBodyUpTo(res.body, this.limits.maxAnswerBytes);
      const body = bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
      frame =
        body === null
          ? errorFrame(call.id, 500, "internal_error", `the answer is larger than the channel's ${this.limits.maxAnswerBytes} bytes`)
          : encodeAnswer({ id: call.id, status: res.status, type: res.headers.get("content-type") ?? "", body });
    } catch {
      frame = errorFrame(call.id, 500, "internal_error", "internal error");
    } finally {
      if (this.inFlight.get(call.id) === ctl) this.inFlight.delete(call.id);
    }
    if (!this.closed && !ctl.signal.aborted) this.peer.send(frame);
  }
}
