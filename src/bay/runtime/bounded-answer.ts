/**
 * A bound on every Ship answer that Bay reads whole (`json`, `text`, `arrayBuffer`,
 * `bytes`): a meta, an error body, an exec result the E2B routes reshape, an
 * upload's result. Each such read comes after the proof check, so only a Ship
 * holding its session's secret can send one; the bound keeps even that Ship from
 * making Bay hold an unbounded body. Bodies Bay relays as a stream (downloads,
 * event streams) are not read whole and are not touched.
 *
 * An answer with a plain Content-Length within the bound (no Transfer-Encoding,
 * no Content-Encoding) keeps its native methods (the HTTP client reads no byte
 * past that length), so an exec's result costs nothing more; one over the bound
 * is refused without reading it; any other is counted as it is read and cut at
 * the bound. Ship answers are fetched with `decompress: false` (ShipClient), so a
 * compressed body is counted as the bytes that arrived, never inflated.
 */
import { readBodyUpTo } from "../../protocol/bounded-body.ts";
import { ShipBadResponseError } from "./errors/ship-bad-response-error.ts";
import { MAX_EVENT_BYTES } from "./event-stream.ts";

/** Largest Ship answer read whole: as large as a streamed event (a result carries output, error and data near Ship's output cap, escaped). */
export const MAX_ANSWER_BYTES = MAX_EVENT_BYTES;

const WHOLE_READS = ["json", "text", "arrayBuffer", "bytes"] as const;

/**
 * The length of a body that is exactly what arrives: a digits-only Content-Length
 * with no Transfer-Encoding (beside which Bun reads the chunks whatever the length
 * says) and no Content-Encoding; null otherwise.
 */
export function plainLength(headers: Headers): number | null {
  const length = headers.get("content-length");
  if (length === null || !/^\d+$/.test(length)) return null;
  return headers.get("transfer-encoding") === null && headers.get("content-encoding") === null ? Number(length) : null;
}

/** `res` with its whole-body reads bounded to `cap` bytes; a read past it is a ShipBadResponseError (ship_error). */
export function boundWholeReads<R extends Response>(res: R, cap = MAX_ANSWER_BYTES): R {
  const length = plainLength(res.headers);
  if (length !== null && length <= cap) return res;
  const tooLarge = () => new ShipBadResponseError(`sandbox runtime sent an answer larger than ${cap} bytes`, { limit_bytes: cap });
  let read: Promise<Uint8Array> | null = null;
  const bytes = (): Promise<Uint8Array> => {
    read ??= length !== null ? refuse(res, tooLarge()) : readUpTo(res, cap, tooLarge);
    return read;
  };
  const readers: Record<(typeof WHOLE_READS)[number], () => Promise<unknown>> = {
    bytes,
    arrayBuffer: async () => {
      const b = await bytes();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    },
    text: async () => new TextDecoder().decode(await bytes()),
    json: async () => JSON.parse(new TextDecoder().decode(await bytes())),
  };
  for (const name of WHOLE_READS) Object.defineProperty(res, name, { value: readers[name], configurable: true });
  return res;
}

async function refuse(res: Response, e: ShipBadResponseError): Promise<never> {
  await res.body?.cancel().catch(() => {});
  throw e;
}

/** Reads the body to its end, or cancels it and throws once it passes `cap` bytes. */
async function readUpTo(res: Response, cap: number, tooLarge: () => ShipBadResponseError): Promise<Uint8Array> {
  const bytes = await readBodyUpTo(res.body, cap);
  if (bytes === null) throw tooLarge();
  return bytes;
}

/** The answer's JSON, or null when it is not JSON; an answer past the bound still fails as such. */
export async function jsonOrNull<T>(res: Response): Promise<T | null> {
  try {
    return (await res.json()) as T;
  } catch (e) {
    if (e instanceof ShipBadResponseError) throw e;
    return null;
  }
}
