/**
 * Answers Bay cannot put in its error model because Bun's HTTP server gives
 * them before any of Bay's code runs (README, "Limits and quotas"): a bare
 * 400/505 for malformed HTTP, a bare 400 for the asterisk target, a bare 431
 * for a head past 1 MiB or past about 200 header lines, and a closed
 * connection for a method Bun does not know (a lower-case one included); and
 * an answer cut by the reset that follows when Bun closes a connection whose
 * request body was never read (it does not linger on close). The fuzzer counts them apart
 * instead of failing on them; anything else bare is still a finding.
 */
import { TRANSPORT_MAX_HEADER_BYTES } from "../../src/protocol/ship/constants.ts";
import type { FuzzRequest } from "./request.ts";
import type { Operation } from "./spec.ts";

/** Bun's parser: header lines it accepts (measured: 199 refused, 152 accepted) and the head size Bay configures. */
const BUN_MAX_HEADER_LINES = 190;
const BUN_MAX_HEAD_BYTES = TRANSPORT_MAX_HEADER_BYTES;
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]);

function headOf(req: FuzzRequest): { lines: number; bytes: number } {
  const lines = req.headers.length + 2; // Host and Connection, added when sending
  const bytes = req.target.length + req.headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
  return { lines, bytes };
}

/** Why a bare answer (no body, no X-Request-Id) is Bun's documented doing, if it is. */
export function bareAnswerLimitation(req: FuzzRequest, status: number): string | undefined {
  const head = headOf(req);
  if (status === 431 && (head.lines > BUN_MAX_HEADER_LINES || head.bytes > BUN_MAX_HEAD_BYTES))
    return "Bun refuses a head past about 200 header lines or 1 MiB with a bare 431";
  if (req.transport !== "raw") return undefined;
  if (req.syntax === "malformed" && (status === 400 || status === 505)) return `Bun refuses malformed HTTP with a bare ${status}`;
  if (status === 400 && req.target === "*") return "Bun refuses the asterisk target (OPTIONS *) with a bare 400";
  return undefined;
}

/** Why a connection closed without an answer is Bun's documented doing, if it is. */
export function closedLimitation(req: FuzzRequest): string | undefined {
  // Methods are case-sensitive: `get` is a method Bun does not know.
  if (req.transport === "raw" && !KNOWN_METHODS.has(req.method) && req.raw?.verbatim === undefined)
    return "Bun closes the connection on a method it does not know";
  return undefined;
}

/**
 * Why an answer cut mid-body is Bun's doing, if it is: the request carried a
 * body that nothing read (an operation that takes none, or no operation), so
 * the close after the answer reset the connection before the client had it all.
 */
export function cutAnswerLimitation(req: FuzzRequest, op: Operation | undefined): string | undefined {
  const size = req.body === undefined ? 0 : typeof req.body === "string" ? req.body.length : req.body.byteLength;
  if (size > 0 && !op?.body) return "Bun closes without reading a body nothing takes: the reset can cut the answer";
  return undefined;
}
