/**
 * The serving end of Bay's call channel (channel.ts has the frames), for Ship and
 * for the memory driver's fake Ship alike: each call becomes the HTTP request it
 * names, with the channel's credentials, handed to the server's own request
 * handler, so every route, check and error is the one that request would meet.
 * A cancel frame, or the channel closing, aborts that request's signal as a
 * client's disconnect does. Only the channel's operations (CHANNEL_OPS) are
 * served: any other call is refused unrun, before anything of it runs.
 */
import {
  CHANNEL_MAX_ANSWER_BYTES,
  CHANNEL_MAX_IN_FLIGHT,
  type ChannelCall,
  encodeAnswer,
  isChannelOperation,
  parseChannelFrame,
} from "./channel.ts";

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

/** Headers a call may not set: the body's framing is the frame's own, its credentials the channel's. */
const FRAMING = new Set(["content-length", "transfer-encoding", "authorization"]);

/** The type of the answers a server builds whole: a channel operation's (CHANNEL_OPS) when it asked for no stream. */
const WHOLE_TYPE = /^application\/json\b/i;

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
    if (!isChannelOperation(frame.method, frame.path)) {
      // Only operations whose answers are small JSON built whole travel here (CHANNEL_OPS).
      this.peer.send(errorFrame(frame.id, 404, "not_found", `${frame.method} is not a call channel's operation on this path`, true));
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
      const res = await this.dispatch(
        new Request(`http://ship${call.path}`, {
          method: call.method,
          headers: this.headersOf(call),
          body: call.body ?? null,
          signal: ctl.signal,
        }),
      );
      const type = res.headers.get("content-type") ?? "";
      const body = await this.answerText(res, type);
      frame =
        body === null
          ? errorFrame(call.id, 500, "internal_error", `the answer is larger than the channel's ${this.limits.maxAnswerBytes} bytes`)
          : encodeAnswer({ id: call.id, status: res.status, type, body });
    } catch {
      frame = errorFrame(call.id, 500, "internal_error", "internal error");
    } finally {
      if (this.inFlight.get(call.id) === ctl) this.inFlight.delete(call.id);
    }
    if (!this.closed && !ctl.signal.aborted) this.peer.send(frame);
  }

  /**
   * The request a call stands for gets the frame's headers but its framing and
   * credentials, the channel's credentials, and its body's length, as an HTTP
   * client declares it: a body limit then judges the length it is told instead of
   * counting the body through a stream of its own.
   */
  private headersOf(call: ChannelCall): [string, string][] {
    const headers: [string, string][] = [["authorization", this.authorization]];
    for (const [name, value] of Object.entries(call.headers ?? {})) if (!FRAMING.has(name.toLowerCase())) headers.push([name, value]);
    if (call.body != null) headers.push(["content-length", String(Buffer.byteLength(call.body))]);
    return headers;
  }

  /**
   * The answer's body as text, or null when it passes the cap. A JSON answer (a
   * channel operation's, which Ship builds whole in memory) is taken at once, then
   * measured; any other (an event stream a call asked for) is read as it comes,
   * and cancelled once it passes the cap.
   */
  private async answerText(res: Response, type: string): Promise<string | null> {
    const cap = this.limits.maxAnswerBytes;
    if (WHOLE_TYPE.test(type)) {
      const text = await res.text();
      // At most 3 bytes of UTF-8 per UTF-16 unit: most answers are measured without counting.
      return text.length * 3 <= cap || Buffer.byteLength(text) <= cap ? text : null;
    }
    const bytes = await readBodyUpTo(res.body, cap);
    return bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  }
}
