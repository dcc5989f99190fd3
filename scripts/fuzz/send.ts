/**
 * Sends a FuzzRequest to Bay (fetch for ordinary requests, a raw socket for
 * the rest) and returns what came back in one shape for the checks.
 */
import { envelope, readConnectStream, STREAM_WINDOW_MS } from "./connect-wire.ts";
import { readWithin } from "./stream-read.ts";
import { sendRaw } from "./raw-http.ts";
import type { FuzzRequest, Resolver } from "./request.ts";

export interface Outcome {
  /** `refused`: the HTTP client would not send it (a generator problem, not Bay's). */
  kind: "response" | "closed" | "timeout" | "error" | "refused";
  status: number;
  /** Lower-case names; repeated headers keep every value. */
  headers: Array<[string, string]>;
  body: Uint8Array;
  detail?: string;
  ms: number;
  /** The answer's body was cut: the connection ended before the length its framing announced. */
  cut?: boolean;
  /** A streamed Connect answer the fuzzer hung up on before it ended (a window, or its first message only). */
  hungUp?: boolean;
}

/** The body as sent: placeholders filled, then (a Connect call's) wrapped in its envelope. */
function bodyBytes(req: FuzzRequest, resolve: Resolver): Uint8Array | undefined {
  const body = req.body;
  if (body === undefined || typeof body !== "string") return body;
  const bytes = Buffer.from(resolve(body), "utf8");
  const env = req.connect?.envelope;
  return env ? envelope(bytes, env.flags, bytes.byteLength + (env.claimedExtra ?? 0)) : bytes;
}

/** The bytes of a raw request: request line, Host, the request's headers, Content-Length, Connection: close, body. */
export function rawBytes(req: FuzzRequest, resolve: Resolver, port: number): Uint8Array {
  if (req.raw?.verbatim !== undefined) return Buffer.from(resolve(req.raw.verbatim), "latin1");
  const eol = req.raw?.eol ?? "\r\n";
  const head = [req.raw?.line !== undefined ? resolve(req.raw.line) : `${req.method} ${resolve(req.target)} HTTP/1.1`];
  if (!req.raw?.noHost) head.push(`Host: 127.0.0.1:${port}`);
  for (const [k, v] of req.headers) head.push(`${k}: ${resolve(v)}`);
  const plain = bodyBytes(req, resolve);
  const body =
    plain && req.raw?.chunked
      ? Buffer.concat([Buffer.from(`${plain.byteLength.toString(16)}\r\n`), plain, Buffer.from("\r\n0\r\n\r\n")])
      : plain;
  if (body && !req.raw?.noLength) head.push(`Content-Length: ${body.byteLength}`);
  head.push("Connection: close");
  const headBytes = Buffer.from(head.join(eol) + eol + eol, "latin1");
  return body ? Buffer.concat([headBytes, body]) : headBytes;
}

function headerList(h: Headers): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  h.forEach((v, k) => {
    out.push([k.toLowerCase(), v]);
  });
  return out;
}

/** How long the fuzzer reads an event stream before it hangs up. */
const SSE_WINDOW_MS = 3_000;

/** The bytes of an event stream within `windowMs`, or until it ends; then the stream is cancelled. */
async function firstEvents(res: Response, windowMs: number): Promise<Uint8Array> {
  return (await readWithin(res, windowMs)).body;
}

async function sendFetch(req: FuzzRequest, resolve: Resolver, port: number): Promise<Outcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const headers = new Headers();
  try {
    for (const [k, v] of req.headers) headers.append(k, resolve(v));
  } catch (e) {
    return { kind: "refused", status: 0, headers: [], body: new Uint8Array(), detail: (e as Error).message, ms: 0 };
  }
  let res: Response;
  try {
    res = await fetch(`http://127.0.0.1:${port}${resolve(req.target)}`, {
      method: req.method,
      headers,
      body: (bodyBytes(req, resolve) as Uint8Array<ArrayBuffer> | undefined) ?? null,
      redirect: "manual",
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (e) {
    const err = e as Error;
    if (err.name === "TimeoutError" || err.name === "AbortError")
      return { kind: "timeout", status: 0, headers: [], body: new Uint8Array(), ms: ms() };
    if (err.name === "TypeError" && !/socket|connect|closed/i.test(err.message)) {
      return { kind: "refused", status: 0, headers: [], body: new Uint8Array(), detail: err.message, ms: ms() };
    }
    return { kind: "closed", status: 0, headers: [], body: new Uint8Array(), detail: `${err.name}: ${err.message}`, ms: ms() };
  }
  let body: Uint8Array;
  let hungUp = false;
  try {
    // An event stream (a watch, a followed output) may never end by design: what came in a
    // short window is its answer, and leaving is what a client may always do.
    // An exec's stream ends with its run (the request's own deadline bounds it).
    const type = res.headers.get("content-type") ?? "";
    const sse = type.startsWith("text/event-stream") && !req.streamEnds;
    // A Connect stream (a watch, a followed process) may not end either: read to its end-stream message, or for a window.
    if (/^application\/connect\+/i.test(type)) {
      const read = await readConnectStream(res, { windowMs: STREAM_WINDOW_MS, firstOnly: req.connect?.firstOnly ?? false });
      body = read.body;
      hungUp = read.hungUp;
    } else body = sse ? await firstEvents(res, SSE_WINDOW_MS) : new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    return {
      kind: "closed",
      status: res.status,
      headers: headerList(res.headers),
      body: new Uint8Array(),
      detail: `body cut: ${(e as Error).message}`,
      ms: ms(),
    };
  }
  return { kind: "response", status: res.status, headers: headerList(res.headers), body, ms: ms(), ...(hungUp ? { hungUp } : {}) };
}

async function sendOnce(req: FuzzRequest, resolve: Resolver, port: number): Promise<Outcome> {
  if (req.transport === "fetch") return sendFetch(req, resolve, port);
  const started = performance.now();
  const o = await sendRaw(port, rawBytes(req, resolve, port), {
    halfClose: req.raw?.halfClose ?? false,
    timeoutMs: req.timeoutMs,
    headRequest: req.method === "HEAD",
  });
  const ms = Math.round(performance.now() - started);
  if (o.kind === "response")
    return {
      kind: "response",
      status: o.response.status,
      headers: o.response.headers,
      body: o.response.body,
      ms,
      ...(o.response.cut ? { cut: true } : {}),
    };
  if (o.kind === "error") return { kind: "error", status: 0, headers: [], body: new Uint8Array(), detail: o.error, ms };
  return {
    kind: o.kind,
    status: 0,
    headers: [],
    body: new Uint8Array(),
    detail: o.partial ? `partial answer: ${JSON.stringify(o.partial)}` : undefined,
    ms,
  };
}

/** Sends the request (twice for a replay; the second answer is returned, with the first's status in `detail`). */
export async function send(req: FuzzRequest, resolve: Resolver, port: number): Promise<Outcome> {
  if (!req.repeat) return sendOnce(req, resolve, port);
  const first = await sendOnce(req, resolve, port);
  const second = await sendOnce(req, resolve, port);
  return { ...second, detail: [second.detail, `first attempt answered ${first.status || first.kind}`].filter(Boolean).join("; ") };
}
