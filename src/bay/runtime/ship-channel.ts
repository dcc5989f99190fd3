/**
 * Bay's call channels (src/protocol/ship/channel.ts): one WebSocket per Ship,
 * proven once to be the session's (openShipSocket), that carries small calls as
 * text frames instead of an HTTP request each, so a call costs neither a fetch,
 * a nonce and its proof, nor an HTTP request for Ship to parse.
 *
 * A call lost with its channel may have run (as an HTTP request lost after it
 * was written may have) and fails as a lost connection, never sent again; only a
 * call that provably did not go through (its frame could not be sent, or Ship
 * refused it before running it, at the channel's cap or as no channel operation)
 * is sent over HTTP instead.
 *
 * A channel never holds up a call: until one is open and proven for its Ship,
 * `call` answers null and the caller goes over HTTP, while the channel opens in
 * the background; a Ship that cannot open one (an older image, a refusal) is left
 * to HTTP for a while. Channels close when their Ship goes, or after an idle spell.
 */
import {
  CHANNEL_MAX_ANSWER_BYTES,
  CHANNEL_OPS,
  CHANNEL_MAX_CALL_CHARS,
  CHANNEL_MAX_PATH_CHARS,
  type ChannelCall,
  encodeCall,
  parseChannelAnswer,
} from "../../protocol/ship/channel.ts";
import type { ShipOperationId } from "../../protocol/ship/index.ts";
import { routes as shipRoutes } from "../../protocol/ship/generated/routes.ts";
import { BayError } from "../errors.ts";
import { ShipBadResponseError } from "./errors/ship-bad-response-error.ts";
import { ShipTimeoutError } from "./errors/ship-timeout-error.ts";
import { ShipUnreachableError } from "./errors/ship-unreachable-error.ts";
import type { CallOptions, Send, ShipTarget } from "./ship-call.ts";
import { openShipSocket } from "./ship-socket.ts";

/** How long a Ship whose channel would not open is left to HTTP before another try. */
const RETRY_AFTER_MS = 30_000;
/** A channel unused this long is closed (the next call over HTTP opens it again). */
const IDLE_MS = 120_000;
/** How long opening a channel may take. */
const OPEN_DEADLINE_MS = 10_000;

/** Each answer that came over a channel, as it came (channelAnswer). */
const fromChannel = new WeakSet<Response>();

/**
 * True for an unread answer that came over a channel: it carries its status, its
 * type (trimmed, left out when blank, as an HTTP header's value would be) and its
 * body, nothing else, so it can be relayed as it is, without reading it or
 * building another Response.
 */
export function channelAnswer(res: Response): boolean {
  return !res.bodyUsed && fromChannel.has(res);
}

/** Statuses whose answer has no body. */
const NULL_BODY = new Set([204, 205, 304]);

interface Pending {
  resolve(res: Response): void;
  reject(e: unknown): void;
}

/**
 * The call never ran: its frame could not be sent, or Ship refused it before
 * running anything (the channel's cap, or no channel operation). The caller sends
 * it over HTTP instead.
 */
export class CallNotDelivered extends Error {
  constructor() {
    super("the call did not go through the call channel");
  }
}

/** One open, proven channel to one Ship. */
class Channel {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  lastUsed = Date.now();
  closed = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly onClosed: () => void,
  ) {
    ws.onmessage = (e) => this.answer(e.data);
    ws.onclose = () => this.shut(new ShipUnreachableError(new Error("the channel to the sandbox runtime closed")));
    ws.onerror = () => this.shut(new ShipUnreachableError(new Error("the channel to the sandbox runtime failed")));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** A fresh call id. */
  newId(): number {
    return ++this.nextId;
  }

  /** Sends call `id` (its encoded frame); its answer as a Response, or the call's error. */
  call(id: number, frame: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Response> {
    this.lastUsed = Date.now();
    return new Promise<Response>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(id);
      };
      const abandon = (e: BayError) => {
        settle();
        this.send(JSON.stringify({ cancel: id }));
        reject(e);
      };
      const onAbort = () =>
        abandon(new BayError("timeout", "the client went away; the call was abandoned", { details: { reason: "client_gone" } }));
      if (signal?.aborted) {
        reject(new BayError("timeout", "the client went away; the call was abandoned", { details: { reason: "client_gone" } }));
        return;
      }
      const timer = setTimeout(() => abandon(new ShipTimeoutError(timeoutMs)), timeoutMs);
      timer.unref?.();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, {
        resolve: (res) => {
          settle();
          resolve(res);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      });
      if (!this.send(frame)) {
        settle();
        reject(new CallNotDelivered());
      }
    });
  }

  close(): void {
    this.shut(new ShipUnreachableError(new Error("the channel to the sandbox runtime was closed")));
    try {
      this.ws.close();
    } catch {
      // already closed
    }
  }

  /** False when the frame provably did not leave: the channel was closed, or the send threw. */
  private send(frame: string): boolean {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(frame);
      return true;
    } catch (e) {
      this.shut(new ShipUnreachableError(e));
      return false;
    }
  }

  private answer(data: unknown): void {
    try {
      this.take(data);
    } catch (e) {
      // Nothing a Ship sends may throw out of the event handler: the channel is dropped.
      this.shut(new ShipBadResponseError("sandbox runtime sent an unusable channel frame", { cause: String(e) }));
      this.ws.close();
    }
  }

  private take(data: unknown): void {
    const a = parseChannelAnswer(data);
    // Each UTF-16 unit is at most 3 bytes: a body that short needs no count.
    if (a === null || (a.body.length * 3 > CHANNEL_MAX_ANSWER_BYTES && Buffer.byteLength(a.body, "utf8") > CHANNEL_MAX_ANSWER_BYTES)) {
      // A Ship that breaks the protocol: nothing more it sends on this channel is believed.
      this.shut(new ShipBadResponseError("sandbox runtime sent an invalid channel frame"));
      this.ws.close();
      return;
    }
    const p = this.pending.get(a.id);
    if (!p) return; // abandoned: its cancel is on the way
    if (a.unrun) {
      p.reject(new CallNotDelivered());
      return;
    }
    if (NULL_BODY.has(a.status)) {
      p.resolve(new Response(null, { status: a.status }));
      return;
    }
    const type = a.type.trim();
    // The body as it came: Bun encodes it as it sends it. Without a type, as bytes, so that
    // Bun adds the type it gives bytes (as to an HTTP answer without one), not a string's.
    const res = type
      ? new Response(a.body, { status: a.status, headers: { "content-type": type } })
      : new Response(Buffer.from(a.body, "utf8"), { status: a.status });
    fromChannel.add(res);
    p.resolve(res);
  }

  private shut(e: unknown): void {
    if (this.closed) return;
    this.closed = true;
    // Frames that went out may have run, as an HTTP request lost once written may have: never sent again.
    for (const p of [...this.pending.values()]) p.reject(e);
    this.onClosed();
  }
}

/** Every channel this Bay holds, one per Ship (endpoint and session). */
export class ShipChannels {
  private readonly open = new Map<string, Channel>();
  private readonly opening = new Set<string>();
  private readonly refusedUntil = new Map<string, number>();
  private readonly sweeper: ReturnType<typeof setInterval>;
  private stopped = false;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), IDLE_MS / 2);
    this.sweeper.unref?.();
  }

  /**
   * The call's answer over the Ship's channel, or null when there is none open
   * (the caller sends it over HTTP; a channel then starts opening) or the call is
   * too large for one. Errors are the call's, as over HTTP.
   */
  call(t: ShipTarget, c: Omit<ChannelCall, "id">, timeoutMs: number, signal?: AbortSignal): Promise<Response> | null {
    if (this.stopped || c.path.length > CHANNEL_MAX_PATH_CHARS) return null;
    const key = `${t.endpoint}\n${t.sessionId}`;
    const channel = this.open.get(key);
    if (!channel) {
      this.start(key, t);
      return null;
    }
    const id = channel.newId();
    const frame = encodeCall({ id, ...c });
    if (frame.length > CHANNEL_MAX_CALL_CHARS) return null;
    return channel.call(id, frame, timeoutMs, signal);
  }

  /** Closes every channel (Bay is stopping). */
  closeAll(): void {
    this.stopped = true;
    clearInterval(this.sweeper);
    for (const ch of [...this.open.values()]) ch.close();
  }

  get size(): number {
    return this.open.size;
  }

  private start(key: string, t: ShipTarget): void {
    if (this.opening.has(key) || (this.refusedUntil.get(key) ?? 0) > Date.now()) return;
    this.opening.add(key);
    openShipSocket(t, shipRoutes.openChannel.path, {}, { deadlineMs: OPEN_DEADLINE_MS })
      .then(({ ws }) => {
        if (this.stopped) {
          ws.close();
          return;
        }
        const channel = new Channel(ws, () => {
          if (this.open.get(key) === channel) this.open.delete(key);
        });
        this.open.set(key, channel);
        this.refusedUntil.delete(key);
      })
      .catch(() => {
        this.refusedUntil.set(key, Date.now() + RETRY_AFTER_MS);
        if (this.refusedUntil.size > 10_000) this.refusedUntil.clear();
      })
      .finally(() => this.opening.delete(key));
  }

  private sweep(): void {
    const now = Date.now();
    for (const ch of [...this.open.values()]) if (ch.inFlight === 0 && now - ch.lastUsed > IDLE_MS) ch.close();
    for (const [key, until] of this.refusedUntil) if (until <= now) this.refusedUntil.delete(key);
  }
}

/**
 * The channel leg of a Ship call (ShipClient.send): a channel operation with at
 * most a JSON body, neither forwarded nor streamed nor on a deadline of its own,
 * goes on its Ship's channel when one is open. Its answer unread; null when it
 * goes over HTTP instead: no channel open yet, too large for one, or provably not
 * run there (CallNotDelivered).
 */
export async function sendOnChannel(
  channels: ShipChannels,
  t: ShipTarget,
  op: ShipOperationId,
  method: string,
  path: string,
  s: Send,
  o: CallOptions,
): Promise<Response | null> {
  if (!CHANNEL_OPS.has(op) || s.raw !== undefined || s.forward || s.accept || s.deadline) return null;
  const headers: Record<string, string> = {};
  if (o.requestId) headers["x-request-id"] = o.requestId;
  let body: string | undefined;
  if (s.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(s.json);
  }
  try {
    return await channels.call(t, { method, path, headers, ...(body !== undefined ? { body } : {}) }, s.timeoutMs, o.signal);
  } catch (e) {
    if (e instanceof CallNotDelivered) return null;
    throw e;
  }
}
