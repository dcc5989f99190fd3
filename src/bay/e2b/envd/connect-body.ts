/**
 * The request an envd Connect call is handed: its message read here first, so
 * that the connection loses its idle timeout only once the client has sent all
 * of it (a server stream, or a call waiting on the sandbox, is then bounded by
 * Bay's own deadlines; a client that never finishes sending is cut by
 * `server.idle_timeout`, credentials or not). Kept apart from rpc.ts, which
 * loads the Connect services with the first envd call.
 */
import type { Context } from "hono";
import { liftIdleTimeout } from "../../api/middleware/connection.ts";
import { REQUEST_ID_HEADER } from "./request-id.ts";

/** Largest Connect message Bay reads (a SendInput of stdin, a request). */
export const READ_MAX_BYTES = 4 * 1024 * 1024;
/** A streaming call's message has a 5-byte envelope. */
const ENVELOPE_BYTES = 5;

/**
 * The call's request, with Bay's request id. A message with a Content-Length
 * within the bound is read whole, then the idle timeout is lifted; any other
 * (chunked, or too large for Connect to accept) is handed on unread and keeps it.
 */
export async function connectRequest(c: Context): Promise<Request> {
  const raw = c.req.raw;
  const headers = new Headers(raw.headers);
  headers.set(REQUEST_ID_HEADER, c.get("requestId") ?? "");
  const length = raw.headers.get("content-length");
  if (length === null || !/^\d+$/.test(length) || Number(length) > READ_MAX_BYTES + ENVELOPE_BYTES) {
    return new Request(raw, { headers });
  }
  const body = await raw.arrayBuffer();
  liftIdleTimeout(c);
  return new Request(raw.url, { method: raw.method, headers, body, signal: raw.signal });
}
