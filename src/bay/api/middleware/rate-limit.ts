/**
 * Per-owner request rate limit: an in-process token bucket per owner holding
 * up to `perMinute` tokens, refilled continuously at `perMinute / 60` per
 * second. A request with no token left is answered 429 quota_exceeded with
 * Retry-After (seconds until the next token). Mounted on /v1 after auth, so
 * /health is exempt and the owner is known. With several Bay replicas the limit
 * is per replica (an owner may get up to replicas × perMinute in total).
 */
import type { MiddlewareHandler } from "hono";
import { BayError } from "../../errors.ts";

interface Bucket {
  tokens: number;
  at: number;
}

export interface RateLimiterOptions {
  perMinute: number;
  now?: () => number;
  /** Sweep full buckets when more owners than this are tracked. */
  maxTracked?: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly capacity: number;
  private readonly perMs: number;
  private readonly now: () => number;
  private readonly maxTracked: number;

  constructor(opts: RateLimiterOptions) {
    this.capacity = opts.perMinute;
    this.perMs = opts.perMinute / 60_000;
    this.now = opts.now ?? Date.now;
    this.maxTracked = opts.maxTracked ?? 10_000;
  }

  /** Takes a token for `owner`: 0 when allowed, else the seconds to wait for one. */
  take(owner: string): number {
    const now = this.now();
    const b = this.buckets.get(owner) ?? { tokens: this.capacity, at: now };
    b.tokens = Math.min(this.capacity, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (!this.buckets.has(owner)) {
      if (this.buckets.size >= this.maxTracked) this.sweep(now);
      this.buckets.set(owner, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  /** Owners tracked right now (tests). */
  get size(): number {
    return this.buckets.size;
  }

  /** Forgets buckets that have refilled: they behave exactly like a fresh one. */
  private sweep(now: number): void {
    for (const [owner, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.capacity) this.buckets.delete(owner);
    }
  }
}

/** The 429 of an owner over the rate limit, with the seconds until a request is allowed again. */
export function rateLimited(perMinute: number, wait: number): BayError {
  return new BayError("quota_exceeded", `rate limit reached: at most ${perMinute} requests per minute per owner`, {
    retryAfter: wait,
    details: { limit_per_minute: perMinute, retry_after_seconds: wait },
  });
}

export function rateLimit(limiter: RateLimiter, perMinute: number): MiddlewareHandler {
  // Not async: nothing runs after next().
  return function bayRateLimit(c, next) {
    const owner = c.get("owner");
    if (!owner) return next();
    const wait = limiter.take(owner);
    if (wait > 0) throw rateLimited(perMinute, wait);
    return next();
  };
}
