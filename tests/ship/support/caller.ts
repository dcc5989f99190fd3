/** Something that answers HTTP requests for a path: app.request or fetch to a port. */
export type ShipCaller = (path: string, init?: RequestInit) => Promise<Response>;

/** Convenience wrapper: JSON requests and decoded responses. */
export class ShipClient {
  constructor(readonly call: ShipCaller) {}

  /** Sends a request with an optional JSON body; returns status and parsed JSON. */
  async json<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "content-type": "application/json" };
    }
    const res = await this.call(path, init);
    const text = await res.text();
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
