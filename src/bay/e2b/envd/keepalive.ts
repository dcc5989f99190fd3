/** What withKeepalive yields when nothing came for its interval. */
export const KEEPALIVE = Symbol("keepalive");

/**
 * The items of `source`, and KEEPALIVE whenever nothing came for `ms` (envd's streams
 * send one so that proxies keep a quiet stream open). Ends with the source; a consumer
 * that stops early closes it (`return()`), after `stop` ended the read it has ahead.
 */
export async function* withKeepalive<T>(
  source: AsyncIterable<T>,
  ms: number,
  stop?: () => void,
): AsyncGenerator<T | typeof KEEPALIVE, void> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<typeof KEEPALIVE>((resolve) => {
        timer = setTimeout(() => resolve(KEEPALIVE), ms);
      });
      const got = await Promise.race([next, tick]);
      clearTimeout(timer);
      if (got === KEEPALIVE) {
        yield KEEPALIVE;
        continue;
      }
      if (got.done) return;
      next = it.next();
      yield got.value;
    }
  } finally {
    // The read ahead is still waiting: `stop` ends it, or `return()` would wait for it.
    stop?.();
    await it.return?.();
  }
}
