/**
 * The shapes of a call to a Ship (its target, options, what `send` takes) and the
 * deadlines of each kind of operation: what Bay's Ship client and its callers share.
 */
import type { ShipOperationId } from "../../protocol/ship/index.ts";
import { KERNEL_INTERRUPT_ANSWER_MS } from "../../protocol/ship/constants.ts";
import { notFound } from "../errors.ts";

export { SUBPROTOCOLS_HEADER, UPSTREAM_HEADER } from "../../protocol/ship/constants.ts";

/** Where one session's Ship answers, and the secret it requires. */
export interface ShipTarget {
  sessionId: string;
  endpoint: string;
  secret: string;
}

/** Per call: the request id Ship logs, and a signal that aborts the call (the client went away). */
export interface CallOptions {
  requestId?: string;
  signal?: AbortSignal;
}

/** An exec call: also whether the client asked for its event stream. */
export interface ExecOptions extends CallOptions {
  stream?: boolean;
}

/** A Ship response whose JSON body is a `T`. */
export interface ShipReply<T> extends Response {
  json(): Promise<T>;
}

/** Transport headroom on top of a call's own timeout. */
const TRANSPORT_MS = 15_000;
/**
 * Deadlines per kind of operation (file transfers may be large). A followed
 * stream's (`stream`) covers its response headers only; its body lasts as long as it lasts.
 */
export const DEADLINES = {
  meta: 3_000,
  processes: 15_000,
  files: 10 * 60_000,
  /** The check before a multipart write's parts: best effort, so a stalled Ship only delays the writes this long. */
  uploadCheck: 30_000,
  contexts: 15_000,
  /** Creating or restarting a context waits for its kernel (Ship gives one a minute to start). */
  contextStart: 90_000,
  stream: 15_000,
  /** A server in the sandbox has this long to send its answer's head. */
  port: 5 * 60_000,
  /** A server's WebSocket: Ship gives the server 30 s to accept the handshake. */
  portSocket: 40_000,
} as const;

/** The Ship operation for each method of a request for a server in the sandbox (HEAD is GET's). */
export const PORT_OPS: Record<string, ShipOperationId> = {
  GET: "portGet",
  HEAD: "portGet",
  POST: "portPost",
  PUT: "portPut",
  PATCH: "portPatch",
  DELETE: "portDelete",
};

export interface Send {
  query?: Record<string, string>;
  params?: Record<string, string>;
  json?: unknown;
  raw?: BodyInit;
  /** The raw body's length, when known: sent as Content-Length, so a body that breaks off short never looks complete to Ship. */
  rawLength?: number;
  /** Sent as Accept (an event stream). */
  accept?: string;
  timeoutMs: number;
  /** The call's deadline, when the caller needs it afterwards (a stream's body); default: timeoutMs from now. */
  deadline?: AbortSignal;
  /** The deadline covers the response headers only: the body may stream for as long as it lasts. */
  streams?: boolean;
  /**
   * A request for a server in the sandbox (the `port*` operations): sent with this
   * method and these headers to the path plus `rest` (already encoded, kept as is);
   * an answer Ship marks as the server's is returned whatever its status, its body
   * streaming past the deadline.
   */
  forward?: { method: string; rest: string; headers: Headers };
}

/** Deadline for an exec: its own timeout, the time an interrupted kernel has to answer, and headroom for transport. */
export const execDeadlineMs = (timeoutSeconds: number): number => timeoutSeconds * 1000 + KERNEL_INTERRUPT_ANSWER_MS + TRANSPORT_MS;

/**
 * An id as one segment of a Ship path. A segment "." or ".." would move the path
 * (every URL parser resolves it, escaped or not): no id of Ship's is one, so it is
 * not_found before anything is sent (reviews s59, s60).
 */
export function shipPathSegment(name: string, value: string): string {
  if (value === "." || value === "..") throw notFound(name.replace(/_id$/, ""), value);
  return encodeURIComponent(value);
}
