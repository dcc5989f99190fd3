/**
 * Per-request connection rules that Bun.serve cannot express globally:
 *
 * * a request names its Host: HTTP/1.1 requires it (Bun refuses one without),
 *   but for an HTTP/1.0 request without it Bun hands over a relative URL, which
 *   routes to the wrong path and breaks every absolute URL built from it;
 * * request headers and URL are bounded (`server.max_header_bytes`): Bay raises
 *   Bun's own parser limit far above it, so an oversized request reaches the app
 *   and is refused in the error model (400) instead of with a bare 431;
 * * connections idle for `server.idle_timeout` seconds are closed (slow or
 *   half-sent requests hold nothing forever), except while a stream that may
 *   legitimately fall silent for minutes is sent (see streamedAnswers).
 */
import type { MiddlewareHandler } from "hono";
import { BayError } from "../../errors.ts";

/** What Bun's server exposes per request (the Hono env when served by Bun.serve). */
interface BunServerLike {
  timeout?: (request: Request, seconds: number) => void;
}

/** Refuses a request without a Host header (400 in the error model). */
export function requireHost(): MiddlewareHandler {
  // Plain functions, not async: nothing runs after next(), so no promise of their own per request.
  return function bayRequireHost(c, next) {
    // Bun gives such a request a relative URL ("/v1/…"); every request with a Host has an absolute one.
    if (c.req.raw.url.startsWith("/")) {
      throw new BayError("validation_error", "a Host header is required", {
        details: { issues: [{ path: "headers.host", message: "required" }] },
      });
    }
    return next();
  };
}

/** Refuses requests whose headers and URL together exceed `maxBytes`. */
export function headerLimit(maxBytes: number): MiddlewareHandler {
  return function bayHeaderLimit(c, next) {
    let size = c.req.url.length;
    c.req.raw.headers.forEach((value, name) => {
      size += name.length + value.length + 4;
    });
    if (size > maxBytes) {
      throw new BayError("validation_error", `request line and headers exceed ${maxBytes} bytes`, {
        details: { issues: [{ path: "headers", message: `larger than ${maxBytes} bytes` }] },
      });
    }
    return next();
  };
}

/** Answers that may fall silent for minutes by design: Bay's event streams, E2B's NDJSON and Connect streams. */
const STREAM_TYPES = /^(text\/event-stream|application\/x-ndjson|application\/connect\+)/i;

/** A request that announces no body (no length, or 0, and no chunks): Bun has all of it. */
const bodiless = (h: Headers): boolean => {
  const length = h.get("content-length");
  return (length === null || length === "0") && h.get("transfer-encoding") === null;
};

/**
 * `server.idle_timeout` and the answers that may take long. What Bun 1.4.5 does
 * (measured): it idle-times a connection while it waits for a request's body; a
 * request without a body while its handler works (one with a body it does not);
 * and a streamed answer that falls silent. It never cuts a client that stops
 * reading. So:
 *
 * * a request without a body has no idle timeout while Bay works on it (a runtime
 *   start, a Ship's first byte), and gets it back before its answer is returned;
 *   one with a body keeps it, so a client that stops sending (with credentials or
 *   without) is cut;
 * * a stream that may be silent by design (an exec's events, a watch, a followed
 *   output) has none while it is sent, bounded by Bay's own deadlines and the
 *   per-owner stream limit, and gets it back when it ends or its client leaves,
 *   so a kept-alive connection after it is cut as any other;
 * * a stream whose client stops taking its chunks for `idleSeconds` is ended
 *   (its source, and the Ship's stream, cancelled), since Bun would wait forever,
 *   and so is one whose client takes a large chunk slower than `minBytesPerSecond`;
 * * a HEAD answer carries no body: one its GET route opened is cancelled at once.
 */
export function streamedAnswers(idleSeconds: number, minBytesPerSecond = MIN_CHUNK_BYTES_PER_SECOND): MiddlewareHandler {
  return async function bayStreamedAnswers(c, next) {
    const server = c.env as BunServerLike | undefined;
    const req = c.req.raw;
    const lifted = server?.timeout !== undefined && bodiless(req.headers);
    if (lifted) server.timeout!(req, 0);
    try {
      await next();
    } finally {
      if (lifted) server.timeout!(req, idleSeconds);
    }
    const res = c.res;
    if (c.req.method === "HEAD") {
      // Hono answers HEAD from the GET route: a stream that route opened (a watch, a followed
      // output) would never be read, and would hold its stream slot and the Ship's watcher forever.
      if (res.body !== null) {
        await res.body.cancel().catch(() => {});
        c.res = new Response(null, res);
      }
      return;
    }
    if (!server?.timeout || !STREAM_TYPES.test(res.headers.get("content-type") ?? "") || res.body === null) return;
    server.timeout(req, 0);
    c.res = new Response(
      watchedStream(res.body, idleSeconds * 1000, minBytesPerSecond, () => server.timeout?.(req, idleSeconds)),
      res,
    );
  };
}

/**
 * Most bytes handed to Bun per pull. Bun pulls again once the socket has taken
 * enough of what it holds, so a large chunk handed over whole left the stall
 * timer waiting for all of it: a 12 MiB event read at 1.5 MiB/s with a 2 s timeout
 * was cut after 2.9 s. In pieces, the wait between pulls is the time the client
 * takes to drain 0.6–1.3 MB of what Bun and the kernel hold ahead of it (measured),
 * whatever the event's size.
 */
const PIECE_BYTES = 64 * 1024;

/**
 * The slowest a client may take a large chunk, in bytes per second: a chunk held
 * in pieces sits whole in Bay's memory (with its stream slot) until Bun asks for
 * what follows it, so that must happen within the stall time plus its size at this
 * rate (a 4 MiB event: 30 s + 64 s), however steadily a client trickles.
 */
export const MIN_CHUNK_BYTES_PER_SECOND = 64 * 1024;

/**
 * `body`, calling `ended` once when it ends, fails or is cancelled, and ending it
 * (source cancelled, stream errored) when a piece handed over is not followed by
 * the next pull within `stallMs` (its client stopped reading), or a chunk is not
 * taken within `stallMs` plus its size at `minBytesPerSecond` (its client reads
 * too slowly to hold it). A Uint8Array chunk over PIECE_BYTES goes over in pieces
 * of that size (views, not copies), one per pull; other chunks go over whole.
 */
function watchedStream(
  body: ReadableStream<Uint8Array>,
  stallMs: number,
  minBytesPerSecond: number,
  ended: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let done = false;
  let stall: ReturnType<typeof setTimeout> | undefined;
  /** What is left of the chunk being handed over, and how far it went. */
  let rest: Uint8Array | undefined;
  let at = 0;
  /**
   * When a large chunk must have been taken: until the pull after its last piece
   * (Bun holds the pieces, views of the whole chunk, until the socket takes them).
   * On the monotonic clock: a wall-clock step must neither cut nor spare a stream.
   */
  let chunkDeadline: number | undefined;
  const end = () => {
    clearTimeout(stall);
    if (done) return;
    done = true;
    ended();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        clearTimeout(stall);
        // A pull after a chunk's last piece: Bun took it all in.
        if (rest === undefined) chunkDeadline = undefined;
        try {
          if (rest === undefined) {
            const r = await reader.read();
            if (r.done) {
              end();
              ctl.close();
              return;
            }
            // Anything else a source may yield (a string, a small chunk) goes over as it is.
            if (r.value instanceof Uint8Array && r.value.byteLength > PIECE_BYTES) {
              rest = r.value;
              at = 0;
              chunkDeadline = performance.now() + stallMs + (r.value.byteLength * 1000) / minBytesPerSecond;
            } else ctl.enqueue(r.value);
          }
          if (rest !== undefined) {
            const piece = rest.subarray(at, at + PIECE_BYTES);
            at += piece.byteLength;
            if (at >= rest.byteLength) rest = undefined;
            ctl.enqueue(piece);
          }
          // While a chunk is held, the next pull must also come before the chunk's deadline.
          const wait = chunkDeadline === undefined ? stallMs : Math.min(stallMs, Math.max(0, chunkDeadline - performance.now()));
          const why = wait < stallMs ? "the client reads the stream too slowly" : "the client stopped reading the stream";
          stall = setTimeout(() => {
            end();
            rest = undefined;
            const gone = new Error(why);
            reader.cancel(gone).catch(() => {});
            ctl.error(gone);
          }, wait);
          stall.unref?.();
        } catch (e) {
          end();
          ctl.error(e);
        }
      },
      cancel(reason) {
        end();
        rest = undefined;
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
