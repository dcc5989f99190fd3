/**
 * Bay's call channel to a Ship (GET /channel, a WebSocket): small calls travel as
 * text frames instead of one HTTP request each. Ship proves the channel is its
 * session's once, with its first frame (as on every Ship WebSocket); after that
 * each frame is one of:
 *
 *   Bay → Ship, a call:   `{"id":N,"method":"POST","path":"/ipython/exec","headers":{…}}` `\n` body
 *   Bay → Ship, a cancel: `{"cancel":N}` (the caller went away or its deadline passed)
 *   Ship → Bay, answer:   `{"id":N,"status":200,"type":"application/json"}` `\n` body
 *                         (`"unrun":true` in the head: refused before anything ran, at the channel's cap
 *                         or as no channel operation, CHANNEL_OPS)
 *
 * A call whose channel is lost before its answer may have run, as an HTTP request
 * lost after it was written may have: it is never sent again.
 *
 * The head is one line of JSON (JSON.stringify writes no raw newline); the body
 * follows the first newline as it is, so it is never escaped twice. Ids are the
 * caller's, unique among its calls in flight.
 */

import type { OperationId } from "./generated/operations.ts";
import { routes } from "./generated/routes.ts";

/**
 * The operations a channel carries (when the call asks for no stream and has no
 * raw body): each answers small JSON that Ship builds whole and bounds. Files read
 * or listed, transfers, ports and streams always go over HTTP, and Ship refuses
 * anything else on a channel, unrun.
 */
export const CHANNEL_OPS: ReadonlySet<OperationId> = new Set<OperationId>([
  "getMeta",
  "execPython",
  "execShell",
  "execCode",
  "listContexts",
  "createContext",
  "getContext",
  "deleteContext",
  "restartContext",
  "listProcesses",
  "getProcess",
  "killProcess",
  "readProcessOutput",
  "writeProcessStdin",
  "signalProcess",
  "createTerminal",
  "writeFile",
  "deletePath",
  "checkUploads",
]);

/** Each channel operation's path, a parameter standing for one segment, by method. */
const CHANNEL_ROUTES = new Map<string, RegExp[]>();
for (const op of CHANNEL_OPS) {
  const { method, path } = routes[op];
  const list = CHANNEL_ROUTES.get(method.toUpperCase()) ?? [];
  list.push(new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`));
  CHANNEL_ROUTES.set(method.toUpperCase(), list);
}

/**
 * True when a call names a channel operation: its method, and its path as the
 * server will route it (the query left out; a path with a dot, a backslash or an
 * escape in it resolved as its request's URL is, from the same string, dot segments
 * and all; review s59). Should no URL hold a path, it names none (with Ship's
 * prefix, none the frame parser accepts was found to: a safety net, review s60).
 */
export function isChannelOperation(method: string, path: string): boolean {
  const list = CHANNEL_ROUTES.get(method);
  if (!list) return false;
  const cut = path.search(/[?#]/);
  let routed = cut < 0 ? path : path.slice(0, cut);
  if (/[\\.%]/.test(routed)) {
    try {
      routed = new URL(`http://ship${path}`).pathname;
    } catch {
      return false;
    }
  }
  return list.some((r) => r.test(routed));
}

/** Largest call frame Bay sends on the channel, in UTF-16 units (≤ 3 bytes each: within Ship's 1 MiB frames); larger calls go over HTTP. */
export const CHANNEL_MAX_CALL_CHARS = 256 * 1024;
/** Largest answer body Ship sends on the channel: Bay's bound on any answer it reads whole. */
export const CHANNEL_MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** Calls one channel runs at once; one more is answered 429. */
export const CHANNEL_MAX_IN_FLIGHT = 256;
/** Longest path (with its query) a call may name: room for Bay's longest workspace path percent-encoded (3840 bytes × 3). */
export const CHANNEL_MAX_PATH_CHARS = 16 * 1024;
const MAX_HEADERS = 16;
const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

export interface ChannelCall {
  id: number;
  method: string;
  /** Ship's path with its query, as an HTTP request would name it. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface ChannelAnswer {
  id: number;
  status: number;
  /** The answer's content type. */
  type: string;
  body: string;
  /** The call was refused before anything of it ran (the channel's cap, or no channel operation): the caller may send it over HTTP. */
  unrun?: true;
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

function split(frame: string): { head: unknown; body: string | undefined } | null {
  const cut = frame.indexOf("\n");
  try {
    return cut < 0 ? { head: JSON.parse(frame), body: undefined } : { head: JSON.parse(frame.slice(0, cut)), body: frame.slice(cut + 1) };
  } catch {
    return null;
  }
}

export function encodeCall(c: ChannelCall): string {
  const { body, ...head } = c;
  return body === undefined ? JSON.stringify(head) : `${JSON.stringify(head)}\n${body}`;
}

export function encodeAnswer(a: ChannelAnswer): string {
  const { body, ...head } = a;
  return `${JSON.stringify(head)}\n${body}`;
}

/** A frame Bay sent: a call, a cancel, or null for anything else (a binary frame, bad JSON, a bad field). */
export function parseChannelFrame(data: string | Uint8Array): ChannelCall | { cancel: number } | null {
  if (typeof data !== "string") return null;
  const parts = split(data);
  const h = parts?.head as Record<string, unknown> | null | undefined;
  if (typeof h !== "object" || h === null || Array.isArray(h)) return null;
  if ("cancel" in h) return isId(h.cancel) && parts!.body === undefined ? { cancel: h.cancel } : null;
  const { id, method, path, headers } = h;
  if (!isId(id) || typeof method !== "string" || !METHODS.has(method)) return null;
  // A path of Ship's own: one leading slash (never `//host`), no control characters.
  if (typeof path !== "string" || path.length > CHANNEL_MAX_PATH_CHARS || !/^\/(?!\/)[\x21-\x7e]*$/.test(path)) return null;
  if (headers !== undefined && !stringRecord(headers)) return null;
  return {
    id,
    method,
    path,
    ...(headers ? { headers: headers as Record<string, string> } : {}),
    ...(parts!.body !== undefined ? { body: parts!.body } : {}),
  };
}

function stringRecord(v: unknown): boolean {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const entries = Object.entries(v);
  return (
    entries.length <= MAX_HEADERS &&
    entries.every(
      ([k, x]) => /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(k) && typeof x === "string" && x.length <= 1024 && !/[\0\r\n]/.test(x),
    )
  );
}

/** An answer Ship sent, or null when the frame is not one. */
export function parseChannelAnswer(data: unknown): ChannelAnswer | null {
  if (typeof data !== "string") return null;
  const parts = split(data);
  const h = parts?.head as Record<string, unknown> | null | undefined;
  if (typeof h !== "object" || h === null || parts!.body === undefined) return null;
  if (!isId(h.id) || !Number.isInteger(h.status) || (h.status as number) < 200 || (h.status as number) > 599) return null;
  // A content type as a header may hold it: printable ASCII, bounded.
  if (typeof h.type !== "string" || !/^[\x20-\x7e]{0,256}$/.test(h.type)) return null;
  if (h.unrun !== undefined && h.unrun !== true) return null;
  return { id: h.id, status: h.status as number, type: h.type, body: parts!.body, ...(h.unrun ? { unrun: true as const } : {}) };
}
