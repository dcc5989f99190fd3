/**
 * The Connect protocol's wire as the fuzzer needs it (connectrpc.com/docs/protocol):
 * envelopes (1 flag byte, a 4-byte big-endian length, the message; flag 0x01
 * compressed, 0x02 end of stream), the error codes with the HTTP status each
 * stands for, and reading a streamed answer the way a client does: to its
 * end-stream message, for a short window (a watch never ends), or up to its
 * first message and then hanging up. Written from the protocol, not from the
 * library Bay serves it with, so that the judge does not trust what it judges.
 */

import { readWithin } from "./stream-read.ts";

export const COMPRESSED_FLAG = 0x01;
export const END_STREAM_FLAG = 0x02;

/** Connect's error codes and the HTTP status of each (the protocol's table). */
export const CONNECT_CODE_STATUS: Readonly<Record<string, number>> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

/** One envelope: `flags`, then a length prefix of `claimed` (default: the data's length), then `data`. */
export function envelope(data: Uint8Array, flags = 0, claimed = data.byteLength): Uint8Array {
  const out = new Uint8Array(5 + data.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, claimed >>> 0);
  out.set(data, 5);
  return out;
}

export interface Envelope {
  flags: number;
  data: Uint8Array;
}

/** The envelopes of a body; `rest`: bytes of an incomplete last envelope (a stream cut or still open). */
export function splitEnvelopes(body: Uint8Array): { envelopes: Envelope[]; rest: number } {
  const envelopes: Envelope[] = [];
  let at = 0;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  while (body.byteLength - at >= 5) {
    const length = view.getUint32(at + 1);
    if (body.byteLength - at - 5 < length) break;
    envelopes.push({ flags: body[at]!, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return { envelopes, rest: body.byteLength - at };
}

/** What is wrong with a Connect error object (`{code, message?, details?}`), or null. */
export function connectErrorProblem(e: unknown): string | null {
  if (!e || typeof e !== "object" || Array.isArray(e)) return "not an object";
  const o = e as Record<string, unknown>;
  if (typeof o.code !== "string") return "no string code";
  if (!(o.code in CONNECT_CODE_STATUS)) return `unknown code ${JSON.stringify(o.code).slice(0, 40)}`;
  if (o.message !== undefined && typeof o.message !== "string") return "a message that is not a string";
  if (o.details !== undefined && !Array.isArray(o.details)) return "details that are not an array";
  return null;
}

/** How long the fuzzer reads a streamed answer that does not end before it hangs up. */
export const STREAM_WINDOW_MS = 3_000;

/**
 * A streamed answer's bytes: to the end of its end-stream envelope, or its first
 * complete envelope when `firstOnly`, or what came within `windowMs`; then the
 * stream is cancelled. `hungUp`: the fuzzer left before the stream ended.
 */
export async function readConnectStream(
  res: Response,
  opts: { windowMs: number; firstOnly: boolean },
): Promise<{ body: Uint8Array; hungUp: boolean }> {
  const { body, ended } = await readWithin(res, opts.windowMs, (body) => {
    const { envelopes } = splitEnvelopes(body);
    // The stream's own end: what follows (nothing, normally) is read by the checks as trailing bytes.
    if (envelopes.some((e) => e.flags & END_STREAM_FLAG)) return "ended";
    return opts.firstOnly && envelopes.length > 0 ? "enough" : null;
  });
  return { body, hungUp: !ended };
}
