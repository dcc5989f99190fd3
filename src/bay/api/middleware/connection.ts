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
  return async function bayRequireHost(c, next) {
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
  return async function bayHeaderLimit(c, next) {
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

/**
 * `server.idle_timeout` cuts a connection Bun is waiting on: a client that stops
 * sending its request, or stops reading a body that is flowing (on Bun 1.4.5 an
 * answer still being worked on is not idle-timed). A stream may be silent for
 * minutes by design (an exec's events, a watch), so while one is sent its
 * connection has no idle timeout: it is bounded by Bay's own deadlines and the
 * per-owner stream limit. The timeout is lifted only when such an answer is
 * returned (never while a request's body is still awaited, so a client without
 * credentials, or with half a body, is cut) and put back when the stream ends or
 * its client leaves (so a kept-alive connection after it is cut as any other).
 * A HEAD answer carries no body: one its GET route opened is cancelled at once.
 */
export function streamedAnswers(idleSeconds: number): MiddlewareHandler {
  return async function bayIdleTimeoutForStreams(c, next) {
    await next();
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
    const server = c.env as BunServerLike | undefined;
    if (!server?.timeout || !STREAM_TYPES.test(res.headers.get("content-type") ?? "") || res.body === null) return;
    const req = c.req.raw;
    server.timeout(req, 0);
    c.res = new Response(
      whenEnded(res.body, () => server.timeout?.(req, idleSeconds)),
      res,
    );
  };
}

/** `body`, calling `ended` once when it ends, fails or is cancelled. */
function whenEnded(body: ReadableStream<Uint8Array>, ended: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    ended();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        try {
          const r = await reader.read();
          if (r.done) {
            end();
            ctl.close();
          } else ctl.enqueue(r.value);
        } catch (e) {
          end();
          ctl.error(e);
        }
      },
      cancel(reason) {
        end();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
