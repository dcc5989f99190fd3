/**
 * Where the client commands (`bay sandbox …`, `bay mcp`) reach a Bay: its URL
 * and the caller's credentials, from flags or BAY_URL / BAY_TOKEN / BAY_OWNER,
 * and a small JSON request helper that turns Bay's error body into a message.
 */
import { readBodyUpTo } from "../../protocol/bounded-body.ts";
import { redactUrl, UsageError } from "./args.ts";

export interface ClientTarget {
  url: URL;
  headers: Record<string, string>;
}

export const DEFAULT_URL = "http://127.0.0.1:8000";
/** The largest JSON answer read (as the Python client's max_answer_bytes); a larger one is refused, not held. */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** The most of an error answer read for its message. */
const MAX_ERROR_BYTES = 1024 * 1024;

export function clientTarget(env: Record<string, string | undefined>, url?: string, token?: string, owner?: string): ClientTarget {
  const raw = url ?? env.BAY_URL ?? DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new UsageError(`--url is not a URL: ${redactUrl(raw)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new UsageError(`--url must be http:// or https://, got ${redactUrl(raw)}`);
  // Credentials in the URL would be shown wherever the URL is (and never sent as the token is).
  // A bare `?` or `#` leaves search and hash empty, yet every path would be put after it (review s104 L4).
  if (parsed.username || parsed.password || raw.includes("?") || raw.includes("#")) {
    throw new UsageError("--url (or BAY_URL) takes no credentials, query or fragment: give the token as --token or BAY_TOKEN");
  }
  const headers: Record<string, string> = {};
  const bearer = token ?? env.BAY_TOKEN;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const who = owner ?? env.BAY_OWNER;
  if (who) headers["x-owner"] = who;
  return { url: parsed, headers };
}

/** `path` under the target's URL, keeping a path prefix (a Bay behind `https://host/bay/`). */
export const endpoint = (target: ClientTarget, path: string) => new URL(target.url.href.replace(/\/+$/, "") + path);

/** A failed call: Bay's error code and message, or why Bay could not be reached. */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Sends a JSON request to Bay; returns the parsed body of a 2xx answer. */
export async function request<T = unknown>(target: ClientTarget, method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit =
    body === undefined ? { method } : { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const text = await readText(await send(target, path, init), MAX_ANSWER_BYTES);
  try {
    return (text ? JSON.parse(text) : null) as T;
  } catch {
    return text as T;
  }
}

/**
 * Sends a request to Bay with the target's credentials; returns a 2xx answer
 * (its body unread), or throws a ClientError with Bay's error code and message.
 */
export async function send(target: ClientTarget, path: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(endpoint(target, path), {
      ...init,
      headers: { ...target.headers, ...(init.headers as Record<string, string> | undefined) },
      // Credentials go to BAY_URL only: X-Owner (anonymous mode's only credential) would follow a redirect elsewhere.
      redirect: "manual",
    });
  } catch (e) {
    throw new ClientError(`cannot reach Bay at ${target.url.origin}: ${(e as Error).message}`, "unreachable", 0);
  }
  if (res.status >= 300 && res.status < 400) {
    const to = res.headers.get("location") ?? "elsewhere";
    throw new ClientError(
      `Bay at ${target.url.origin} answered a redirect (${res.status}) to ${printable(to)}: give its URL as --url or BAY_URL`,
      "redirect",
      res.status,
    );
  }
  if (res.ok) return res;
  let text: string;
  try {
    text = await readText(res, MAX_ERROR_BYTES);
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    text = "";
  }
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
  throw new ClientError(
    printable(`${err?.code ?? `HTTP ${res.status}`}: ${err?.message ?? text.slice(0, 200)}`),
    err?.code ?? "http_error",
    res.status,
  );
}

/**
 * The answer's body as text, read only up to `max` bytes: a longer one (as its
 * Content-Length says, or as it is read) is a ClientError `answer_too_large`.
 */
export async function readText(res: Response, max: number): Promise<string> {
  const tooLarge = () =>
    new ClientError(`Bay's answer is over ${max} bytes; it was not read (is --url a Bay?)`, "answer_too_large", res.status);
  const declared = res.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > max) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const bytes = await readBodyUpTo(res.body, max);
  if (bytes === null) throw tooLarge();
  return new TextDecoder().decode(bytes);
}

/** `text` with control characters shown as `?`, at most 500 characters: a server's words never drive the user's terminal. */
export function printable(text: string): string {
  return text.slice(0, 500).replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}
