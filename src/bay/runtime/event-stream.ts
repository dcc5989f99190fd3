/**
 * Bay's side of a streamed exec (a Ship answer of type text/event-stream). Ship's events
 * pass through as they come, one whole event at a time, so a broken connection never
 * leaves half an event; Ship's `error` event is rewritten into Bay's error body (with
 * the request id, codes mapped as for a JSON answer); and a stream that breaks, runs past
 * its deadline or ends without its last event is closed with an `error` event of Bay's
 * own (ship_error or timeout), never just cut. Nothing is read from Ship before the
 * client asks for more, so a slow client slows Ship down instead of filling Bay.
 */
import { type BayError, errorBody } from "../errors.ts";
import { ShipBadResponseError } from "./errors/ship-bad-response-error.ts";
import { ShipTimeoutError } from "./errors/ship-timeout-error.ts";
import { ShipUnreachableError } from "./errors/ship-unreachable-error.ts";
import { fromShipErrorBody } from "./ship-errors.ts";

/** Longest event accepted (a result carries output, error and data, each near Ship's output cap). */
export const MAX_EVENT_BYTES = 64 * 1024 * 1024;

const NL = 10;
const encoder = new TextEncoder();
const ERROR_PREFIX = encoder.encode("event: error\n");
const RESULT_PREFIX = encoder.encode("event: result\n");

/** True for an answer whose body is an event stream. */
export const isEventStream = (res: Response): boolean => (res.headers.get("content-type") ?? "").startsWith("text/event-stream");

const startsWith = (bytes: Uint8Array, prefix: Uint8Array): boolean =>
  bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);

/** Cuts a byte stream into whole events (each ending with its blank line); holds at most one partial event. */
export class EventSplitter {
  private parts: Uint8Array[] = [];
  private size = 0;
  private lastWasNewline = false;

  constructor(private readonly maxEventBytes = MAX_EVENT_BYTES) {}

  /** The events `chunk` completes; throws when one grows past the limit. */
  push(chunk: Uint8Array): Uint8Array[] {
    const events: Uint8Array[] = [];
    let start = 0;
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, from);
      if (nl < 0) break;
      // An event ends at a newline right after a newline of the same event.
      const afterNewline = nl > start ? chunk[nl - 1] === NL : start === 0 && this.lastWasNewline;
      if (afterNewline) {
        events.push(this.take(chunk.subarray(start, nl + 1)));
        start = nl + 1;
        this.lastWasNewline = false;
      }
      from = nl + 1;
    }
    if (start < chunk.length) {
      this.parts.push(chunk.subarray(start));
      this.size += chunk.length - start;
      this.lastWasNewline = chunk[chunk.length - 1] === NL;
      if (this.size > this.maxEventBytes) throw new Error(`an event longer than ${this.maxEventBytes} bytes`);
    }
    return events;
  }

  /** Bytes of an event not yet complete. */
  get pending(): number {
    return this.size;
  }

  private take(last: Uint8Array): Uint8Array {
    if (this.parts.length === 0) return last;
    const whole = new Uint8Array(this.size + last.length);
    let offset = 0;
    for (const p of [...this.parts, last]) {
      whole.set(p, offset);
      offset += p.length;
    }
    this.parts = [];
    this.size = 0;
    return whole;
  }
}

function errorEvent(err: BayError, requestId: string): Uint8Array {
  return encoder.encode(`event: error\ndata: ${JSON.stringify(errorBody(err, requestId))}\n\n`);
}

/** Ship's error event as Bay's. */
function rewriteError(event: Uint8Array, requestId: string): Uint8Array {
  const text = new TextDecoder().decode(event);
  const data = text
    .split("\n")
    .filter((l) => l.startsWith("data:"))
    .map((l) => l.slice(5).trimStart())
    .join("\n");
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(data);
  } catch {
    parsed = null;
  }
  return errorEvent(fromShipErrorBody(parsed, null), requestId);
}

export interface RelayOptions {
  requestId: string;
  /** The call's deadline (it also aborts the body). */
  deadline: AbortSignal;
  timeoutMs: number;
  /** Aborts when Bay's client went away: then nobody is left to tell. */
  client?: AbortSignal;
  /** Told of a stream Bay had to end itself (for metrics and logs). */
  onFailure?: (err: BayError) => void;
}

/** Relays an event-stream answer as described at the top of this file. */
export function relayEventStream(res: Response, o: RelayOptions): Response {
  const upstream = res.body!.getReader();
  const splitter = new EventSplitter();
  let ended = false;
  const fail = (ctrl: ReadableStreamDefaultController<Uint8Array>, err: BayError) => {
    o.onFailure?.(err);
    if (!ended) ctrl.enqueue(errorEvent(err, o.requestId));
    ctrl.close();
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      for (;;) {
        let chunk: Uint8Array;
        try {
          const r = await upstream.read();
          if (r.done) {
            if (ended && splitter.pending === 0) ctrl.close();
            else
              fail(ctrl, new ShipBadResponseError("the sandbox runtime ended the stream before its result", { reason: "connection_lost" }));
            return;
          }
          chunk = r.value;
        } catch (e) {
          if (o.client?.aborted) {
            ctrl.close();
            return;
          }
          fail(ctrl, o.deadline.aborted ? new ShipTimeoutError(o.timeoutMs) : new ShipUnreachableError(e));
          return;
        }
        let events: Uint8Array[];
        try {
          events = splitter.push(chunk);
        } catch {
          await upstream.cancel().catch(() => {});
          fail(ctrl, new ShipBadResponseError("the sandbox runtime sent an event too large to relay"));
          return;
        }
        if (events.length === 0) continue;
        for (const event of events) {
          if (startsWith(event, ERROR_PREFIX)) {
            ctrl.enqueue(rewriteError(event, o.requestId));
            ended = true;
          } else {
            if (startsWith(event, RESULT_PREFIX)) ended = true;
            ctrl.enqueue(event);
          }
        }
        return;
      }
    },
    async cancel(reason) {
      await upstream.cancel(reason).catch(() => {});
    },
  });
  return new Response(body, {
    status: res.status,
    headers: {
      "content-type": res.headers.get("content-type") ?? "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}
