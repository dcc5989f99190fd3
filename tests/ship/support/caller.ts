import type { ShipCredentials } from "../../../src/protocol/ship/index.ts";

/** Something that answers HTTP requests for a path: app.request or fetch to a port. */
export type ShipCaller = (path: string, init?: RequestInit) => Promise<Response>;

/** A caller that sends the session secret on every request, as Bay does. */
export function withSecret(call: ShipCaller, secret: string): ShipCaller {
  return (path, init = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has("authorization")) headers.set("authorization", `Bearer ${secret}`);
    return call(path, { ...init, headers });
  };
}

/** Fresh test credentials (a random secret of the length Bay uses). */
export function testCredentials(): ShipCredentials {
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  return { session_id: `sess-test-${crypto.randomUUID().slice(0, 8)}`, secret };
}

/** Convenience wrapper: JSON requests and decoded responses, sent with the session secret. */
export class ShipClient {
  readonly call: ShipCaller;
  constructor(
    /** Sends without credentials (for the refusal tests). */
    readonly unauthenticated: ShipCaller,
    readonly secret: string,
  ) {
    this.call = withSecret(unauthenticated, secret);
  }

  /** Sends a request with an optional JSON body; returns status and parsed JSON. */
  async json<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "content-type": "application/json" };
    }
    const res = await this.call(path, init);
    const text = await res.text();
    if (res.status === 204 && text === "") return { status: res.status, body: null as T };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${path} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`);
    }
    return { status: res.status, body: parsed as T };
  }

  /** POST /ipython/exec. */
  python(code: string, timeout?: number) {
    return this.json("POST", "/ipython/exec", timeout === undefined ? { code } : { code, timeout });
  }

  /** POST /shell/exec. */
  shell(command: string, extra: Record<string, unknown> = {}) {
    return this.json("POST", "/shell/exec", { command, ...extra });
  }

  /** POST /code/exec. */
  code(body: { code: string; language?: string; context_id?: string; timeout?: number }) {
    return this.json("POST", "/code/exec", body);
  }

  /** A POST asking for an event stream (`Accept: text/event-stream`); the response unread. */
  stream(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    return this.call(path, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      ...(signal ? { signal } : {}),
    });
  }
}

/** Polls `check` until it returns a value or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(100);
  }
}
