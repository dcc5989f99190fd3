import type { HandlerContext } from "@connectrpc/connect";

/** What withKeepalive yields when nothing came for its interval. */
export const KEEPALIVE = Symbol("keepalive");

/** envd's streams (process output, a watched directory): the longest quiet time before a keepalive. */
export const ENVD_KEEPALIVE_MS = 15_000;

/** Shortest keepalive interval a client may ask for: a tiny one would have Bay send it frames in a busy loop. */
const MIN_KEEPALIVE_MS = 1_000;

/** The keepalive interval for a stream: the client's `Keepalive-Ping-Interval` (seconds), within [1 s, `capMs`]. */
export function keepaliveInterval(header: string | null, capMs: number): number {
  const asked = Number(header ?? Number.NaN) * 1000;
  if (!Number.isFinite(asked) || asked <= 0) return capMs;
  return Math.min(Math.max(asked, Math.min(MIN_KEEPALIVE_MS, capMs)), capMs);
}

/** An envd stream's interval (process output, a watched directory): what its call asks for, as envd reads it for both. */
export const streamKeepaliveMs = (ctx: HandlerContext, capMs: number): number =>
  keepaliveInterval(ctx.requestHeader.get("keepalive-ping-interval"), capMs);

/**
 * The items of `source`, and KEEPALIVE whenever nothing came for `ms` (envd's streams,
 * and E2B's interpreter, send one so that proxies keep a quiet stream open and a client
 * that vanished is found by a failing write). Ends with the source; a consumer that
 * stops early closes it (`return()`), after `stop` ended the read it has waiting.
 *
 * An item is read when the consumer asks for the next one, never ahead: a consumer that
 * ends the stream after its last item gets no KEEPALIVE after it. While one is awaited,
 * it has one reaction however many intervals pass (a race per interval would add one to
 * it each time, all kept until it comes: ~64 B per keepalive over a day-long silence).
 */
export async function* withKeepalive<T>(
  source: AsyncIterable<T>,
  ms: number,
  stop?: () => void,
): AsyncGenerator<T | typeof KEEPALIVE, void> {
  // A zero or negative interval would send one on every turn of the event loop.
  if (!(ms >= 1)) throw new RangeError(`a keepalive interval of ${ms} ms`);
  const it = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = Promise.resolve(it.next());
      let settled = false;
      let wake = () => {};
      const onSettled = () => {
        settled = true;
        wake();
      };
      // Also marks a failure as handled while the consumer is away: it is thrown below.
      next.then(onSettled, onSettled);
      while (!settled) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, ms);
        });
        clearTimeout(timer);
        if (!settled) yield KEEPALIVE;
      }
      const got = await next;
      if (got.done) return;
      yield got.value;
    }
  } finally {
    // A read may still be waiting (the consumer left at a KEEPALIVE): `stop` ends it, or `return()` would wait for it.
    stop?.();
    await it.return?.();
  }
}
