/**
 * How MCP tools reach Bay: through Bay's own HTTP app, in-process, with the
 * MCP caller's own credentials (Authorization, or X-Owner in anonymous mode)
 * and request id. Every rule of /v1 — authentication, owner scoping (another
 * owner's id is 404), validation, paths, limits, quotas, rate limit — applies
 * to a tool exactly as to a REST call, because it *is* a REST call; nothing is
 * reimplemented for MCP.
 */
import type { Context } from "hono";
import { forwardedHeaders } from "../domain/sandbox-ports.ts";

/** A JSON answer from a /v1 route. */
export interface BayAnswer<T = unknown> {
  status: number;
  body: T;
}

/** A /v1 error, as a tool reports it. */
export class BayCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Bay's app, in-process (`app.request`): takes an absolute URL on the MCP request's origin. */
export type AppRequest = (url: string, init: RequestInit) => Response | Promise<Response>;

/** Headers that carry the caller's identity; nothing else is forwarded. */
const IDENTITY_HEADERS = ["authorization", "x-owner"] as const;

export class BayCaller {
  private readonly headers: Record<string, string> = {};
  /** The MCP request's own origin: its Host already passed the host guard. */
  private readonly origin: string;
  private readonly signal: AbortSignal;

  constructor(
    private readonly request: AppRequest,
    c: Context,
  ) {
    this.origin = new URL(c.req.url).origin;
    this.signal = c.req.raw.signal;
    for (const h of IDENTITY_HEADERS) {
      const v = c.req.header(h);
      if (v !== undefined) this.headers[h] = v;
    }
    // One id for the MCP request and every /v1 call a tool makes for it.
    this.headers["x-request-id"] = c.get("requestId");
  }

  /**
   * Calls a /v1 route and returns its answer whole, whatever its status (a server's
   * in the sandbox). `headers` never carry the caller's identity or request id: those
   * are the caller's own, set last.
   */
  async raw(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    // Only what a port's server may get (sandbox-ports.ts): never a Host (which would route the
    // call elsewhere in Bay, review s89 L1), credentials, framing or hop-by-hop headers.
    const headers = forwardedHeaders(new Headers(init.headers ?? {}));
    for (const [k, v] of Object.entries(this.headers)) headers.set(k, v);
    return this.request(`${this.origin}${path}`, {
      method,
      headers,
      // The MCP request's own: a client that leaves stops the calls made for it (review s89 L2).
      signal: this.signal,
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
  }

  /** Calls a /v1 route; a non-2xx answer throws BayCallError with Bay's error code and message. */
  async json<T = unknown>(method: string, path: string, body?: unknown): Promise<BayAnswer<T>> {
    const res = await this.raw(
      method,
      path,
      body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {},
    );
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    if (res.status >= 400) {
      const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new BayCallError(res.status, err?.code ?? "internal_error", err?.message ?? `HTTP ${res.status}`);
    }
    return { status: res.status, body: parsed as T };
  }
}

/** `/v1/sandboxes/<id>…` with the id encoded. */
export const sandboxPath = (id: string, rest = "") => `/v1/sandboxes/${encodeURIComponent(id)}${rest}`;
