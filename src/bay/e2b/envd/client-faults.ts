/**
 * A request Connect RPC cannot read is the client's fault: connect-es answers two
 * such requests as `internal` (HTTP 500, a server fault) — a binary message that is
 * no protobuf (`parse binary: …`) and a compressed envelope when no compression was
 * negotiated. envd (connect-go) answers a message it cannot decode as invalid_argument,
 * and so does Bay: this wraps a handler and rewrites those two errors, unary (status
 * and body) or streamed (the end-stream message, when it comes first and alone: a
 * server stream's one request message is read before the method runs). A client
 * stream's later message that fails to parse ends a stream that has begun: that
 * end-stream is passed on as connect-es wrote it. Everything else passes untouched.
 */
import { encodeEnvelope, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { endStreamFlag } from "@connectrpc/connect/protocol-connect";

/** connect-es's messages for a request it could not read (protocol/serialization.js, protocol/envelope.js). */
const UNREADABLE = /^(?:parse binary: |received compressed envelope, but do not know how to decompress)/;

/** The Connect error JSON with `internal` turned into invalid_argument, if it is an unreadable request's; else null. */
function rewritten(json: Uint8Array): Uint8Array | null {
  let parsed: { code?: unknown; message?: unknown; error?: { code?: unknown; message?: unknown } };
  try {
    parsed = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return null;
  }
  const err = parsed.error ?? parsed;
  if (err.code !== "internal" || typeof err.message !== "string" || !UNREADABLE.test(err.message)) return null;
  const fixed = { code: "invalid_argument", message: err.message };
  return new TextEncoder().encode(JSON.stringify(parsed.error ? { ...parsed, error: fixed } : fixed));
}

async function unary(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (res.status !== 500 || !res.body) return res;
  const chunks: Uint8Array[] = [];
  for await (const c of res.body) chunks.push(c);
  const body = new Uint8Array(Buffer.concat(chunks));
  const fixed = rewritten(body);
  const header = new Headers(res.header);
  if (!fixed) return { ...res, body: one(body) };
  header.set("content-length", String(fixed.byteLength));
  return { ...res, status: 400, header, body: one(fixed) };
}

async function* one(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

/** The stream as it comes, its first message rewritten when it is an unreadable request's end-stream; headers go at once. */
function streamed(res: UniversalServerResponse): UniversalServerResponse {
  if (res.status !== 200 || !res.body) return res;
  return { ...res, body: firstFixed(res.body) };
}

/** An end-stream envelope that is the whole chunk, its error rewritten (see rewritten); any other chunk as it is. */
function fixedEndStream(chunk: Uint8Array): Uint8Array {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk.byteLength < 5 || chunk[0] !== endStreamFlag || view.getUint32(1) !== chunk.byteLength - 5) return chunk;
  const fixed = rewritten(chunk.subarray(5));
  return fixed ? encodeEnvelope(endStreamFlag, fixed) : chunk;
}

/** `body` with its first chunk through fixedEndStream; a client that goes away ends `body` too. */
async function* firstFixed(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  let done = false;
  try {
    let first = true;
    for (;;) {
      const n = await it.next();
      if (n.done) {
        done = true;
        return;
      }
      yield first ? fixedEndStream(n.value) : n.value;
      first = false;
    }
  } finally {
    if (!done) await it.return?.();
  }
}

/** `h`, answering requests it cannot read as invalid_argument instead of internal. */
export function withClientFaults(h: UniversalHandler): UniversalHandler {
  const streaming = h.method.methodKind !== "unary";
  const wrapped = async (req: Parameters<UniversalHandler>[0]) => {
    const res = await h(req);
    return streaming ? streamed(res) : unary(res);
  };
  return Object.assign(wrapped, h);
}
