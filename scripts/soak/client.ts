/**
 * The soak's HTTP client for the Bay under test. It always asks the Bay that
 * runs now (the URL changes when Bay is restarted), and retries what a fault
 * may leave briefly unavailable (503, 502, connection errors) within a bound.
 */
import type { BayUnderTest } from "../lib/bay-under-test.ts";

/**
 * How an upload is sent: a multipart form (path field first or file first), the raw
 * bytes with ?path=, or E2B's multipart `POST /e2b/files` (sandbox routes only: on a
 * workspace route it is sent raw).
 */
export type UploadOrder = "path-first" | "file-first" | "raw" | "e2b";
export const UPLOAD_ORDERS: readonly UploadOrder[] = ["path-first", "file-first", "raw", "e2b"];

/** Where E2B's paths put a workspace path (/home/user is /workspace). */
export const e2bPath = (path: string): string => `/home/user/${path}`;

/** The sandbox id of a sandbox route (`/v1/sandboxes/{id}`), or null for a workspace route. */
export const sandboxIdOf = (route: string): string | null => /^\/v1\/sandboxes\/([^/]+)$/.exec(route)?.[1] ?? null;

export interface Answer {
  status: number;
  body: any;
}

const OWNER = { "x-owner": "soak" };
const sha256 = (b: Uint8Array): string => new Bun.CryptoHasher("sha256").update(b).digest("hex");

export { sha256 };

export class SoakClient {
  /** Answers that were retried (503, 502, no connection) and how many. */
  readonly retried = new Map<string, number>();

  /** Uploads sent, by how (an `e2b` on a workspace route counts as `raw`, as it is sent). */
  readonly uploads = new Map<string, number>();

  /** Each sandbox's envd access token (they never change). */
  private readonly tokens = new Map<string, string>();

  constructor(private readonly bay: BayUnderTest) {}

  /** The envd headers of sandbox `id`: its id and access token, from E2B's sandbox detail. */
  async envdHeaders(id: string): Promise<Record<string, string>> {
    let token = this.tokens.get(id);
    if (!token) {
      const detail = await this.must("GET", `/e2b/sandboxes/${id}`, undefined, 200);
      token = String(detail.envdAccessToken);
      this.tokens.set(id, token);
    }
    return { "e2b-sandbox-id": id, "x-access-token": token };
  }

  get url(): string {
    return this.bay.url;
  }

  /** One JSON call, no retries. */
  async json(method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<Answer> {
    const res = await fetch(this.url + path, {
      method,
      headers: { ...OWNER, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed };
  }

  /** A JSON call that must answer `expect`; throws otherwise. */
  async must(method: string, path: string, body: unknown, expect: number): Promise<any> {
    const r = await this.retrying(() => this.json(method, path, body));
    if (r.status !== expect) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return r.body;
  }

  /** Uploads `data` to `route`/filesystem/upload: a form with its fields in the given order, or the raw bytes. */
  async upload(route: string, path: string, data: Uint8Array, order: UploadOrder): Promise<Answer> {
    const file = new Blob([data as Uint8Array<ArrayBuffer>]);
    const sandboxId = sandboxIdOf(route);
    const sent = order === "e2b" && !sandboxId ? "raw" : order;
    this.uploads.set(sent, (this.uploads.get(sent) ?? 0) + 1);
    if (order === "e2b" && sandboxId) {
      // What the E2B SDKs' files.write sends: one `file` part named by its path.
      const form = new FormData();
      form.append("file", file, e2bPath(path));
      const res = await fetch(`${this.url}/e2b/files`, {
        method: "POST",
        headers: await this.envdHeaders(sandboxId),
        body: form,
        signal: AbortSignal.timeout(300_000),
      });
      return { status: res.status, body: await res.text() };
    }
    if (order === "raw" || order === "e2b") {
      const res = await fetch(`${this.url}${route}/filesystem/upload?path=${encodeURIComponent(path)}`, {
        method: "POST",
        headers: { ...OWNER, "content-type": "application/octet-stream" },
        body: file,
        signal: AbortSignal.timeout(300_000),
      });
      return { status: res.status, body: await res.text() };
    }
    const form = new FormData();
    if (order === "path-first") {
      form.append("path", path);
      form.append("file", file, "soak.bin");
    } else {
      form.append("file", file, "soak.bin");
      form.append("path", path);
    }
    const res = await fetch(`${this.url}${route}/filesystem/upload`, {
      method: "POST",
      headers: OWNER,
      body: form,
      signal: AbortSignal.timeout(300_000),
    });
    return { status: res.status, body: await res.text() };
  }

  /** Downloads a file: its bytes on 200, null on 404; retries transient failures for up to `withinMs`. */
  async download(route: string, path: string, withinMs = 90_000): Promise<{ status: number; bytes: Uint8Array | null }> {
    const r = await this.retrying(async () => {
      const res = await fetch(`${this.url}${route}/filesystem/download?path=${encodeURIComponent(path)}`, {
        headers: OWNER,
        signal: AbortSignal.timeout(120_000),
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, body: bytes };
    }, withinMs);
    return { status: r.status, bytes: r.status === 200 ? (r.body as Uint8Array) : null };
  }

  /** Runs `fn` until it answers something other than 502/503 or a connection error, for up to `withinMs`. */
  async retrying(fn: () => Promise<Answer>, withinMs = 90_000): Promise<Answer> {
    const deadline = Date.now() + withinMs;
    for (let attempt = 0; ; attempt++) {
      let answer: Answer | undefined;
      let failure = "";
      try {
        answer = await fn();
        if (answer.status !== 502 && answer.status !== 503) return answer;
        failure = String(answer.status);
      } catch (e) {
        failure = (e as Error).name;
      }
      this.retried.set(failure, (this.retried.get(failure) ?? 0) + 1);
      if (Date.now() > deadline) {
        if (answer) return answer;
        throw new Error(`no answer from Bay within ${withinMs} ms (${failure})`);
      }
      await Bun.sleep(Math.min(2000, 200 * 2 ** attempt));
    }
  }
}
