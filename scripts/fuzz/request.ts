/**
 * One fuzz request as data: what is sent (method, target, headers, body,
 * transport), why (strategy and mutation, for grouping and the report), and
 * what the contract demands beyond the generic checks (`mustReject`).
 * Resource ids appear as placeholders such as `{{sb.own}}` and are filled in
 * just before sending, so the same seed generates the same requests whatever
 * ids the run's fixtures got.
 */

/** How a raw-socket request deviates from a plain one. */
export interface RawShape {
  /** The complete request as sent (a latin1 byte string): nothing is added. */
  verbatim?: string;
  /** The whole request line, instead of `METHOD target HTTP/1.1`. */
  line?: string;
  /** Line terminator (default CRLF). */
  eol?: string;
  /** No Host header. */
  noHost?: boolean;
  /** No Content-Length is added for the body (the headers say what they say). */
  noLength?: boolean;
  /** Send the (resolved) body as one chunk of `Transfer-Encoding: chunked`. */
  chunked?: boolean;
  /** Half-close the socket after writing: the request is cut short on purpose. */
  halfClose?: boolean;
}

/** A call to one of envd's Connect RPC services (envd-rpc.ts): its framing at send time, and what the judge needs. */
export interface ConnectCall {
  /** `process.Process/Start`: the method aimed at. */
  path: string;
  /** The method's kind, when the request reaches it as a Connect call (POST to its path); absent otherwise. */
  kind?: "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";
  /** The (filled-in) text body is sent as one envelope: these flags, a length prefix of its length plus `claimedExtra`. */
  envelope?: { flags: number; claimedExtra?: number };
  /** Hang up after the first message of a streamed answer, as a client that goes away. */
  firstOnly?: boolean;
  /** A body Bay stops reading (over its limit): the close after the answer may cut it. */
  unread?: boolean;
  /** No message, or two, for a method that takes one: Connect's answer is unimplemented (as connect-go's). */
  cardinality?: boolean;
}

/**
 * - `valid`: well-formed HTTP/1.1; Bay must answer, in the contract.
 * - `malformed`: not valid HTTP; closing the connection is fine, an answer must still be in the contract.
 * - `truncated`: cut short on purpose; any answer must still be in the contract.
 */
export type Syntax = "valid" | "malformed" | "truncated";

export interface FuzzRequest {
  /** Position in the generated sequence (with the seed, enough to regenerate it). */
  index: number;
  /** The operation aimed at (operationId), or a label for requests that aim at none. */
  aim: string;
  /** The API of the operation aimed at (`bay`, `e2b`). */
  api?: string;
  strategy: string;
  /** What was changed, for humans. */
  mutation: string;
  method: string;
  /** Request target (path and query). fetch: ASCII, already percent-encoded; raw: a latin1 byte string. */
  target: string;
  /** Header lines in order; duplicates allowed. raw: latin1 byte strings. */
  headers: Array<[string, string]>;
  body?: string | Uint8Array;
  transport: "fetch" | "raw";
  raw?: RawShape;
  syntax: Syntax;
  /** Why the contract forbids success for this request, when it does. */
  mustReject?: string;
  /** Runs with nothing else in flight (it stops compute other requests may be using). */
  exclusive?: boolean;
  /** Send twice in a row (idempotency replay); the second answer is the one checked. */
  repeat?: boolean;
  /** An event stream that ends by design (an exec's): read to its end, not for a short window. */
  streamEnds?: boolean;
  /** Why a 200 JSON-RPC answer must carry an error (or a tool result with `isError`), when it must. */
  mustFailRpc?: string;
  /** A Connect RPC call to envd (judged by envd-rpc-check.ts, not by a spec). */
  connect?: ConnectCall;
  timeoutMs: number;
}

/** Fills `{{kind.role}}` placeholders from the run's fixtures. */
export type Resolver = (text: string) => string;

export function makeResolver(values: Record<string, string>): Resolver {
  return (text) =>
    text.replace(/\{\{([a-z]+\.[a-z]+)\}\}/g, (m, key: string) => {
      const v = values[key];
      if (v === undefined) throw new Error(`no fixture for ${m}`);
      return v;
    });
}

/** UTF-8 bytes of `s` as a latin1 string (one char per byte), for raw request heads. */
export const utf8Bytes = (s: string): string => Buffer.from(s, "utf8").toString("latin1");

/**
 * Percent-encodes like encodeURIComponent, but a lone surrogate becomes the
 * bytes its WTF-8 form would have (ED A0 80 …) instead of throwing: invalid
 * UTF-8 under the percent signs is a case worth sending.
 */
export function pctEncode(s: string): string {
  if (s.isWellFormed()) return encodeURIComponent(s);
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const isHigh = c >= 0xd800 && c <= 0xdbff;
    const next = s.charCodeAt(i + 1);
    if (isHigh && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += `%${(0xe0 | (c >> 12)).toString(16).toUpperCase()}%${(0x80 | ((c >> 6) & 0x3f)).toString(16).toUpperCase()}%${(0x80 | (c & 0x3f)).toString(16).toUpperCase()}`;
    } else out += encodeURIComponent(s[i]!);
  }
  return out;
}

/** A short, printable rendering: long runs folded (`"x"×70000`), control bytes escaped, capped at `max` characters. */
export function shorten(text: string, max = 300): string {
  const folded = text.replace(/(.)\1{15,}/gsu, (run, ch: string) => `⟨${JSON.stringify(ch)}×${[...run].length}⟩`);
  const escaped = JSON.stringify(folded).slice(1, -1);
  return escaped.length > max ? `${escaped.slice(0, max)}…(${escaped.length} chars)` : escaped;
}

/** How big a request is, to pick the smallest example of a finding. */
export function requestSize(r: FuzzRequest): number {
  const body = r.body === undefined ? 0 : typeof r.body === "string" ? r.body.length : r.body.byteLength;
  return r.target.length + body + r.headers.reduce((s, [k, v]) => s + k.length + v.length, 0);
}

/** The request as one line for the report (headers Bay's tests always send are left out). */
export function renderRequest(r: FuzzRequest): string {
  if (r.raw?.verbatim !== undefined)
    return `raw verbatim ${shorten(r.raw.verbatim, 300)}${r.raw.halfClose ? " | [socket half-closed after sending]" : ""}`;
  const parts = [
    `${r.transport === "raw" ? "raw " : ""}${r.raw?.line ? shorten(r.raw.line, 200) : `${r.method} ${shorten(r.target, 200)}`}`,
  ];
  for (const [k, v] of r.headers.slice(0, 8)) parts.push(`${shorten(k, 60)}: ${shorten(v, 120)}`);
  if (r.headers.length > 8) parts.push(`…${r.headers.length - 8} more headers like ${shorten(r.headers[8]![0], 40)}`);
  if (r.body !== undefined) {
    const text = typeof r.body === "string" ? r.body : Buffer.from(r.body).toString("latin1");
    parts.push(`body(${typeof r.body === "string" ? Buffer.byteLength(r.body) : r.body.byteLength} B)=${shorten(text, 300)}`);
  }
  if (r.raw?.chunked) parts.push("[body sent chunked]");
  if (r.raw?.halfClose) parts.push("[socket half-closed after sending]");
  if (r.raw?.eol === "\n") parts.push("[LF line endings]");
  if (r.raw?.noHost) parts.push("[no Host header]");
  return parts.join(" | ");
}
