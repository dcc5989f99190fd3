/**
 * Idempotency-Key for create routes. The key is claimed in one atomic
 * statement before the handler runs; a replay returns the stored status and
 * body byte for byte; another body under the same key, or a duplicate while
 * the first is still running, is a 409 conflict. Responses that a retry should
 * not see again (5xx, 409, 429) release the key instead of being stored.
 */
import type { MiddlewareHandler } from "hono";
import { canonicalJson } from "../../../protocol/canonical-json.ts";
import { jsonShapeRefusal } from "../../../protocol/json-shape.ts";
import { BayError } from "../../errors.ts";
import { errorMessage, type Logger } from "../../logger.ts";
import type { IdempotencyStore, StoredResponse } from "../../store/idempotency-store.ts";

export interface IdempotencyOptions {
  store: IdempotencyStore;
  ttlMs: number;
  now?: () => number;
  /** Store failures after the handler ran are logged, not turned into a 500. */
  logger?: Logger;
  /** Called for every response answered from a stored record (metrics). */
  onReplay?: () => void;
}

const KEY_RE = /^[A-Za-z0-9_-]{1,128}$/;
const NOT_STORED = new Set([409, 429]);

export function fingerprint(method: string, path: string, rawBody: string): string {
  let canonical = rawBody;
  // A body too many values or too deep to parse cheaply is the handler's to refuse: its raw text is the fingerprint.
  if (jsonShapeRefusal(Buffer.from(rawBody)) !== null) return digest(method, path, rawBody);
  try {
    canonical = canonicalJson(rawBody.trim() === "" ? {} : JSON.parse(rawBody));
  } catch {
    // Not JSON: the handler will reject it; fingerprint the raw text.
  }
  return digest(method, path, canonical);
}

function digest(method: string, path: string, canonical: string): string {
  return new Bun.CryptoHasher("sha256").update(`${method}\n${path}\n${canonical}`).digest("hex");
}

/** An error body replayed under a key names the request being answered now, not the first one. */
function withRequestId(body: string, requestId: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { request_id?: string } };
    if (parsed?.error && typeof parsed.error === "object" && "request_id" in parsed.error) {
      parsed.error.request_id = requestId;
      return JSON.stringify(parsed);
    }
  } catch {
    // Not JSON: replayed as stored.
  }
  return body;
}

export function idempotency(opts: IdempotencyOptions): MiddlewareHandler {
  const now = opts.now ?? Date.now;
  return async function bayIdempotency(c, next) {
    const header = c.req.header("idempotency-key");
    if (header === undefined) return next();
    const key: string = header;
    if (!KEY_RE.test(key)) {
      throw new BayError("validation_error", "Idempotency-Key must be 1-128 characters of [A-Za-z0-9_-]", {
        details: { issues: [{ path: "headers.idempotency-key", message: "invalid format" }] },
      });
    }
    const owner = c.get("owner");
    const fp = fingerprint(c.req.method, c.req.path, await c.req.text());
    const result = await opts.store.claim(owner, key, fp, now(), opts.ttlMs);
    if (result.kind !== "claimed") {
      const claim = result;
      if (claim.fingerprint !== fp) {
        throw new BayError("conflict", "Idempotency-Key was already used with a different request", { details: { idempotency_key: key } });
      }
      if (claim.kind === "in_flight") {
        throw new BayError("conflict", "a request with this Idempotency-Key is still in progress", {
          retryAfter: 1,
          details: { idempotency_key: key },
        });
      }
      const headers = new Headers(claim.response.headers);
      headers.set("Idempotent-Replayed", "true");
      opts.onReplay?.();
      headers.set("X-Request-Id", c.get("requestId"));
      return new Response(withRequestId(claim.response.body, c.get("requestId")), { status: claim.response.status, headers });
    }
    const claim = result.claim;
    // The handler records the resource it creates on the claim, in the same transaction.
    c.set("idempotencyClaim", claim);
    try {
      await next();
    } catch (e) {
      await release();
      throw e;
    }
    const res = c.res;
    if (res.status >= 500 || NOT_STORED.has(res.status)) {
      await release();
      return;
    }
    const body = await res.clone().text();
    const contentType = res.headers.get("content-type");
    const stored: StoredResponse = { status: res.status, body, headers: contentType ? { "content-type": contentType } : {} };
    // The resource already exists: answering 500 now would invite a retry that the
    // in-flight record then refuses. Retry the write, and if it still fails, send
    // the real response and leave the claim to go stale.
    for (let attempt = 1; ; attempt++) {
      try {
        // False: the claim went stale and another request holds the key now; its record is its own.
        if (!(await opts.store.complete(claim, stored))) opts.logger?.warn("idempotency claim lost before completion", { owner });
        return;
      } catch (e) {
        if (attempt >= 3) {
          opts.logger?.error("idempotency record not stored", { owner, status: res.status, error: errorMessage(e) });
          return;
        }
        await Bun.sleep(50 * attempt);
      }
    }

    async function release(): Promise<void> {
      try {
        await opts.store.release(claim);
      } catch (e) {
        // The original outcome matters more; the claim goes stale on its own.
        opts.logger?.warn("idempotency claim not released", { owner, error: errorMessage(e) });
      }
    }
  };
}
