/**
 * HTTP/1.1 over a plain loopback socket, for the requests fetch() would refuse
 * or rewrite (unknown methods, `*` targets, raw bytes in paths and headers,
 * duplicated or contradictory framing headers, bodies cut short). Reads one
 * response: by Content-Length, chunked, or until the server closes.
 */
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  /** Header names lower-case; repeated headers keep every value. */
  headers: Array<[string, string]>;
  body: Uint8Array;
  /** The connection ended before the body its framing announced was complete. */
  cut?: boolean;
}

export type RawOutcome =
  | { kind: "response"; response: RawResponse }
  | { kind: "closed"; partial: string }
  | { kind: "timeout"; partial: string }
  | { kind: "error"; error: string };

const HEAD_END = Buffer.from("\r\n\r\n");

/** Parses a complete response out of `buf`, or returns null while more bytes are needed (`ended`: the peer closed). */
export function parseResponse(buf: Buffer, ended: boolean, headRequest: boolean): RawResponse | null {
  const end = buf.indexOf(HEAD_END);
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(lines[0] ?? "");
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0]?.slice(0, 80))}`);
  const status = Number(m[1]);
  // Interim answers (100 Continue) precede the real one.
  if (status >= 100 && status < 200 && status !== 101) return parseResponse(buf.subarray(end + 4), ended, headRequest);
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers.push([line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()]);
  }
  const rest = buf.subarray(end + 4);
  const get = (n: string) => headers.find(([k]) => k === n)?.[1];
  if (headRequest || status === 204 || status === 304 || status === 101) {
    return { status, headers, body: new Uint8Array() };
  }
  // An event stream (a watch, a followed output) may never end by design: its head is the answer.
  if (get("content-type")?.startsWith("text/event-stream")) return { status, headers, body: new Uint8Array() };
  if (get("transfer-encoding")?.toLowerCase().includes("chunked")) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const nl = rest.indexOf("\r\n", at);
      if (nl < 0) return ended ? { status, headers, body: Buffer.concat(chunks), cut: true } : null;
      const size = Number.parseInt(rest.subarray(at, nl).toString("latin1"), 16);
      if (!Number.isFinite(size)) throw new Error("bad chunk size in response");
      if (size === 0) return { status, headers, body: Buffer.concat(chunks) };
      if (rest.length < nl + 2 + size + 2) return ended ? { status, headers, body: Buffer.concat(chunks), cut: true } : null;
      chunks.push(rest.subarray(nl + 2, nl + 2 + size));
      at = nl + 2 + size + 2;
    }
  }
  const length = get("content-length");
  if (length !== undefined) {
    const n = Number(length);
    if (rest.length >= n) return { status, headers, body: new Uint8Array(rest.subarray(0, n)) };
    return ended ? { status, headers, body: new Uint8Array(rest), cut: true } : null;
  }
  return ended ? { status, headers, body: new Uint8Array(rest) } : null;
}

/** Writes `request` to 127.0.0.1:`port` and reads one response within `timeoutMs`. */
export function sendRaw(
  port: number,
  request: Uint8Array,
  opts: { halfClose?: boolean; timeoutMs: number; headRequest?: boolean },
): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect({ host: "127.0.0.1", port });
    const finish = (o: RawOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const partial = () => Buffer.concat(chunks).subarray(0, 200).toString("latin1");
    const attempt = (ended: boolean) => {
      try {
        const res = parseResponse(Buffer.concat(chunks), ended, opts.headRequest ?? false);
        if (res) finish({ kind: "response", response: res });
        else if (ended) finish({ kind: "closed", partial: partial() });
      } catch (e) {
        finish({ kind: "error", error: `${(e as Error).message}; first bytes: ${JSON.stringify(partial())}` });
      }
    };
    const timer = setTimeout(() => finish({ kind: "timeout", partial: partial() }), opts.timeoutMs);
    socket.on("connect", () => {
      socket.write(request, () => {
        if (opts.halfClose) socket.end();
      });
    });
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      attempt(false);
    });
    socket.on("end", () => attempt(true));
    socket.on("close", () => attempt(true));
    socket.on("error", (e) => {
      // A reset after (part of) an answer still leaves that answer to parse.
      if (chunks.length > 0) return attempt(true);
      finish(/ECONNRESET|EPIPE/.test(e.message) ? { kind: "closed", partial: "" } : { kind: "error", error: e.message });
    });
  });
}
