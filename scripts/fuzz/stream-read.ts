/** Reading a streamed answer for a while: what an event stream or a Connect stream sends within a window. */

/** What `enough` says of the bytes so far: the stream's own end, enough read, or read on. */
export type ReadVerdict = "ended" | "enough" | null;

/**
 * `res`'s body until it ends, `enough(body so far)` says so, or `windowMs` passes;
 * then the stream is cancelled. `ended`: it ended by itself (or `enough` saw its end).
 */
export async function readWithin(
  res: Response,
  windowMs: number,
  enough: (body: Uint8Array) => ReadVerdict = () => null,
): Promise<{ body: Uint8Array; ended: boolean }> {
  const reader = res.body?.getReader();
  if (!reader) return { body: new Uint8Array(), ended: true };
  let body = new Uint8Array();
  const until = performance.now() + windowMs;
  let ended = false;
  try {
    for (;;) {
      const left = until - performance.now();
      if (left <= 0) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = await Promise.race([
        reader.read(),
        new Promise<null>((r) => {
          timer = setTimeout(() => r(null), left);
        }),
      ]);
      clearTimeout(timer);
      if (next === null) break;
      if (next.done) {
        ended = true;
        break;
      }
      body = new Uint8Array(Buffer.concat([body, next.value]));
      const verdict = enough(body);
      if (verdict === "ended") ended = true;
      if (verdict !== null) break;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return { body, ended };
}
