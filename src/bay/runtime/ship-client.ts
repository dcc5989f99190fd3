/**
 * Plain HTTP client from Bay to a Ship runtime. It knows Ship's wire format and
 * turns transport failures and Ship error bodies into `BayError`s; it does not
 * know about sandboxes or sessions.
 */
import { BayError, ERROR_CODES, type ErrorCode } from "../errors.ts";
import { ShipBadResponseError } from "./errors/ship-bad-response-error.ts";
import { ShipTimeoutError } from "./errors/ship-timeout-error.ts";
import { ShipUnreachableError } from "./errors/ship-unreachable-error.ts";

export interface ShipMeta {
  runtime: { name: string; version: string; api_version: string };
  workspace: { mount_path: string };
  capabilities: Record<string, { operations?: string[] } | undefined>;
}

export interface ForwardRequest {
  method: string;
  /** Path and query on the Ship, e.g. `/ipython/exec` or `/filesystem/files?path=a.txt`. */
  path: string;
  headers?: Headers;
  body?: BodyInit | null;
  timeoutMs: number;
}

/** Ship error codes that pass through to the client unchanged; anything else becomes ship_error. */
const PASS_THROUGH = new Set<ErrorCode>([
  "validation_error",
  "invalid_path",
  "file_not_found",
  "not_found",
  "payload_too_large",
  "quota_exceeded",
  "timeout",
]);

export class ShipClient {
  constructor(private readonly fetchImpl: typeof fetch = fetch) {}

  /** True when the Ship answers /health with 200 within `timeoutMs`. */
  async isHealthy(baseUrl: string, timeoutMs = 1000): Promise<boolean> {
    try {
      const res = await this.fetchImpl(`${baseUrl}/health`, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Reads and shape-checks GET /meta. */
  async meta(baseUrl: string, timeoutMs = 3000): Promise<ShipMeta> {
    const res = await this.send(baseUrl, { method: "GET", path: "/meta", timeoutMs });
    const body = (await res.json().catch(() => null)) as Partial<ShipMeta> | null;
    if (!body?.runtime?.api_version || typeof body.capabilities !== "object" || body.capabilities === null) {
      throw new ShipBadResponseError("sandbox runtime sent an invalid /meta");
    }
    return body as ShipMeta;
  }

  /**
   * Sends a request to the Ship and returns its successful response unread (so
   * the caller can stream it). Ship error bodies become `BayError`s.
   */
  async send(baseUrl: string, req: ForwardRequest): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchImpl(`${baseUrl}${req.path}`, {
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        signal: AbortSignal.timeout(req.timeoutMs),
        // Request bodies may be streams: send them as they arrive.
        duplex: "half",
      } as RequestInit);
    } catch (e) {
      if (isTimeout(e)) throw new ShipTimeoutError(req.timeoutMs);
      throw new ShipUnreachableError(baseUrl, e);
    }
    if (res.ok) return res;
    throw await this.toError(res);
  }

  private async toError(res: Response): Promise<BayError> {
    const text = await res.text().catch(() => "");
    let parsed: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    const err = parsed?.error;
    const code = err?.code as ErrorCode | undefined;
    if (code && (ERROR_CODES as readonly string[]).includes(code) && PASS_THROUGH.has(code)) {
      return new BayError(code, err?.message ?? code, { details: err?.details ?? {} });
    }
    return new ShipBadResponseError(`sandbox runtime failed: ${err?.message ?? `HTTP ${res.status}`}`, {
      ship_status: res.status,
      ship_code: code ?? null,
    });
  }
}

function isTimeout(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === "TimeoutError" || name === "AbortError";
}

/** Whether an error means the runtime is gone (worth checking the container). */
export const isUnreachable = (e: unknown): e is ShipUnreachableError => e instanceof ShipUnreachableError;
