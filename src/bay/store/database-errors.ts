/**
 * When the database itself fails (a libSQL server that cannot be reached, does
 * not answer in time, or whose answer is not libSQL's: a proxy's HTML page, a body
 * that does not decode; a file locked past its busy timeout, a full or failing
 * disk), the request that met it answers 503 `database_unavailable` with a reason
 * and `Retry-After`, never a 500: the client may retry, and nothing was half done
 * that the next call cannot finish. Every other failure of a statement (a
 * constraint, an SQL syntax error: Bay's own bugs) passes on as it was.
 *
 * `guardDatabase` is the one place this is decided: every statement of every
 * store goes through it. Raw engine text stays in the log (`internal`).
 */
import { BayError } from "../errors.ts";
import type { Database } from "./database.ts";

export type DatabaseUnavailableReason = "unreachable" | "rejected" | "timeout" | "busy" | "full" | "io_error";

const MESSAGES: Record<DatabaseUnavailableReason, string> = {
  unreachable: "the database cannot be reached; retry shortly",
  rejected: "the database server refused Bay (its URL or credentials are wrong: an operator must fix Bay's configuration)",
  timeout: "the database did not answer in time; retry shortly",
  busy: "the database is busy; retry shortly",
  full: "the database's disk is full",
  io_error: "the database cannot be read or written",
};

/** Seconds a client should wait before trying again. */
const RETRY_AFTER: Record<DatabaseUnavailableReason, number> = {
  unreachable: 2,
  rejected: 60,
  timeout: 2,
  busy: 1,
  full: 30,
  io_error: 30,
};

/** Errors of the connection to a libSQL server (Bun's fetch and Node's socket codes). */
const TRANSPORT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ConnectionRefused",
  "ConnectionClosed",
  "FailedToOpenSocket",
  // TLS to a libsql:// or https:// server.
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  // A body whose Content-Encoding does not decode (Bun's fetch): mangled on the way.
  "ZlibError",
  "BrotliDecompressionError",
  "ZstdDecompressionError",
]);

/** libSQL client codes for a server that failed or spoke something else (a proxy's 502, a closed stream). */
const SERVER_CODES = new Set(["SERVER_ERROR", "HRANA_WEBSOCKET_ERROR", "HRANA_CLOSED_ERROR", "HRANA_PROTO_ERROR"]);

/** HTTP statuses of a server that refused Bay (its token, or the database named): `rejected`. */
const REFUSED = new Set([401, 403, 404]);

type ErrorLike = { name?: unknown; code?: unknown; status?: unknown; cause?: unknown };

/** Why `e` means the database is unavailable, or null when it is a statement's own failure. */
export function unavailableReason(e: unknown): DatabaseUnavailableReason | null {
  for (let err = e as ErrorLike | null, depth = 0; err && typeof err === "object" && depth < 4; err = err.cause as ErrorLike, depth++) {
    const code = typeof err.code === "string" ? err.code : "";
    if (err.name === "TimeoutError" || code === "DATABASE_TIMEOUT") return "timeout";
    // The server refused Bay's token or knows no such database (401, 403, 404): a configuration error, not soon over.
    const status = (err.cause as ErrorLike | undefined)?.status;
    if (code === "SERVER_ERROR" && REFUSED.has(status as number)) return "rejected";
    if (TRANSPORT_CODES.has(code) || SERVER_CODES.has(code)) return "unreachable";
    // An answer that is not JSON at all: a proxy's HTML page sent with 200, a body cut
    // short (an error status is kept: deadlineFetch). The libSQL client reads every answer
    // as JSON, and nothing else under a statement throws a SyntaxError (bad SQL is SQLITE_ERROR).
    if (err.name === "SyntaxError") return "unreachable";
    // SQLITE_LOCKED (a conflict within one connection) is Bay's own bug, not a busy database.
    if (code.startsWith("SQLITE_BUSY")) return "busy";
    if (code === "SQLITE_FULL") return "full";
    if (/^SQLITE_(IOERR|CANTOPEN|READONLY|NOMEM)/.test(code)) return "io_error";
  }
  return null;
}

/** The 503 for a database failure (the engine's own text only in the log). */
export function databaseUnavailable(reason: DatabaseUnavailableReason, cause: unknown): BayError {
  return new BayError("database_unavailable", MESSAGES[reason], {
    details: { reason },
    retryAfter: RETRY_AFTER[reason],
    internal: { database_error: cause instanceof Error ? cause.message : String(cause) },
    cause,
  });
}

function guarded<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    const reason = unavailableReason(e);
    throw reason ? databaseUnavailable(reason, e) : e;
  });
}

/**
 * The same database, its environmental failures turned into `database_unavailable`.
 * Every method whose answer is a promise is guarded: every statement (`execute`,
 * `batch`, a LocalDatabase's `one`, and any added later), so none can go around it.
 * A synchronous answer (a LocalDatabase's change `version()` for the read cache,
 * `close()`) is the database's own, as is everything else (`instanceof`, `closed`).
 */
export function guardDatabase<D extends Database>(db: D): D {
  // Per method, made once (the read cache asks for version() on every GET): the engine's function and its stand-in.
  const methods = new Map<PropertyKey, { fn: unknown; guarded: unknown }>();
  // A test that replaces a method replaces the guarded one (which its wrapper calls), not the engine's.
  const replaced = new Map<PropertyKey, unknown>();
  return new Proxy(db, {
    get(target, prop) {
      if (replaced.size > 0 && replaced.has(prop)) return replaced.get(prop);
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function" || prop === "constructor") return value;
      const hit = methods.get(prop);
      if (hit?.fn === value) return hit.guarded;
      const stand = (...args: unknown[]): unknown => {
        const result: unknown = Reflect.apply(value, target, args);
        return result instanceof Promise ? guarded(result) : result;
      };
      methods.set(prop, { fn: value, guarded: stand });
      return stand;
    },
    set(target, prop, value) {
      if (typeof Reflect.get(target, prop, target) === "function") replaced.set(prop, value);
      else return Reflect.set(target, prop, value, target);
      return true;
    },
  });
}

/**
 * A `fetch` for the libSQL client that gives up after `ms`: a server that stops
 * answering must not hold Bay's requests (and their callers) forever. A write whose
 * answer never came may still have been applied; every write of Bay's is safe to
 * retry (compare-and-set, idempotency keys).
 *
 * An error answer keeps its status (see `statusKept`).
 */
export function deadlineFetch(ms: number, base: typeof fetch = fetch): typeof fetch {
  const timed = async (input: RequestInfo | URL, init?: RequestInit) => {
    const own = init?.signal ?? (input instanceof Request ? input.signal : null);
    const signal = own ? AbortSignal.any([own, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
    const res = await base(input, { ...init, signal });
    return res.ok ? res : statusKept(res);
  };
  return Object.assign(timed, base) as typeof fetch;
}

/**
 * An error answer as the libSQL client can read its status from. The client reads
 * one labelled exactly `application/json` as the server's own error object and then
 * reports no status: a proxy's HTML page under that label throws a SyntaxError, a
 * `null` body a TypeError, and an API gateway's `{"message": "Unauthorized"}` reads
 * as an error of the server's. So a refusal (401, 403, 404: `rejected`, whatever its
 * body says), and any error answer whose body is not a JSON object, is handed on as
 * `text/plain`, for which the client reports the status (and the text, for the log).
 */
async function statusKept(res: Response): Promise<Response> {
  if (res.headers.get("content-type") !== "application/json") return res;
  const text = await res.text();
  let object = false;
  if (!REFUSED.has(res.status)) {
    try {
      const body: unknown = JSON.parse(text);
      object = body !== null && typeof body === "object";
    } catch {
      // not JSON: handed on as text
    }
  }
  const type = object ? "application/json" : "text/plain";
  return new Response(text, { status: res.status, statusText: res.statusText, headers: { "content-type": type } });
}
