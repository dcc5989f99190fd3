/**
 * The one error hierarchy of Bay. Domain, driver and runtime code throw
 * `BayError` with a code from `ErrorCode`; the single `onError` handler maps the
 * code to an HTTP status through `ERROR_STATUS` and writes the contract's body.
 */

export const ERROR_CODES = [
  "validation_error",
  "invalid_path",
  "capability_not_supported",
  "unauthorized",
  "forbidden",
  "not_found",
  "file_not_found",
  "method_not_allowed",
  "conflict",
  "sandbox_expired",
  "payload_too_large",
  "quota_exceeded",
  "internal_error",
  "not_implemented",
  "ship_error",
  "session_not_ready",
  "driver_unavailable",
  "database_unavailable",
  "timeout",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The one table from error code to HTTP status. */
export const ERROR_STATUS = {
  validation_error: 400,
  invalid_path: 400,
  capability_not_supported: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  file_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  sandbox_expired: 409,
  payload_too_large: 413,
  quota_exceeded: 429,
  internal_error: 500,
  not_implemented: 501,
  ship_error: 502,
  session_not_ready: 503,
  driver_unavailable: 503,
  database_unavailable: 503,
  timeout: 504,
} as const satisfies Record<ErrorCode, number>;

export type ErrorStatus = (typeof ERROR_STATUS)[ErrorCode];

export interface BayErrorOptions {
  /** Sent to the client: stable, documented shapes only. */
  details?: Record<string, unknown>;
  /**
   * For the log only (with the request id), never sent: engine messages,
   * container ids, internal endpoints, raw database or driver text.
   */
  internal?: Record<string, unknown>;
  cause?: unknown;
  /** Seconds; written as a Retry-After header (503, 429). */
  retryAfter?: number;
}

/** A failure with a contract error code. The message is safe to show to clients. */
export class BayError extends Error {
  override readonly name = "BayError";
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly internal: Record<string, unknown>;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, options: BayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    this.internal = options.internal ?? {};
    this.retryAfter = options.retryAfter;
  }

  get status(): ErrorStatus {
    return ERROR_STATUS[this.code];
  }

  /**
   * A copy of this error with other client details: the same class, code, message,
   * stack, cause and log fields. This error is left as it was (another caller may hold it).
   */
  withDetails(details: Record<string, unknown>): this {
    // A real Error of this error's class (no constructor of it runs), given this one's own properties.
    const copy = Reflect.construct(Error, [], this.constructor) as this;
    const own = Object.getOwnPropertyDescriptors(this) as Record<string, PropertyDescriptor>;
    own.details = { value: details, enumerable: true, writable: true, configurable: true };
    Object.defineProperties(copy, own);
    return copy;
  }
}

/** The contract's one error body for `err` (also the data of a stream's `error` event). */
export function errorBody(err: BayError, requestId: string) {
  return { error: { code: err.code, message: err.message, request_id: requestId, details: err.details } };
}

/** Shorthands for the errors thrown most often. */
export const notFound = (kind: string, id: string) => new BayError("not_found", `${kind} not found: ${id}`, { details: { kind, id } });
/**
 * A create whose Idempotency-Key claim is no longer its own (it ran past the claim's
 * in-flight timeout and a retry took the key over): it created nothing, and a retry
 * answers with what the newer request made.
 */
export const idempotencyClaimLost = () =>
  new BayError("conflict", "this request's Idempotency-Key was taken over by a newer request with the same key; nothing was created", {
    retryAfter: 1,
    details: { reason: "idempotency_claim_lost" },
  });
