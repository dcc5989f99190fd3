/**
 * Where the client commands (`bay sandbox …`, `bay mcp`) reach a Bay: its URL
 * and the caller's credentials, from flags or BAY_URL / BAY_TOKEN / BAY_OWNER,
 * and a small JSON request helper that turns Bay's error body into a message.
 */
import { UsageError } from "./args.ts";

export interface ClientTarget {
  url: URL;
  headers: Record<string, string>;
}

export const DEFAULT_URL = "http://127.0.0.1:8000";

export function clientTarget(env: Record<string, string | undefined>, url?: string, token?: string, owner?: string): ClientTarget {
  const raw = url ?? env.BAY_URL ?? DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new UsageError(`--url is not a URL: ${raw}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new UsageError(`--url must be http:// or https://, got ${raw}`);
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
  const text = await (await send(target, path, init)).text();
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
  const text = await res.text();
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

/** `text` with control characters shown as `?`, at most 500 characters: a server's words never drive the user's terminal. */
export function printable(text: string): string {
  return text.slice(0, 500).replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}
