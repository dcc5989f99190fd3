/** Error codes Ship can answer with; one body shape for all of them. */
export type ShipErrorCode =
  | "validation_error"
  | "invalid_path"
  | "unauthorized"
  | "file_not_found"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "quota_exceeded"
  | "internal_error"
  | "upstream_error"
  | "timeout";

/** The single code → HTTP status table. */
export const SHIP_ERROR_STATUS = {
  validation_error: 400,
  invalid_path: 400,
  unauthorized: 401,
  file_not_found: 404,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  quota_exceeded: 429,
  internal_error: 500,
  /** A server in the sandbox (user code) broke a proxied request. */
  upstream_error: 502,
  timeout: 504,
} as const satisfies Record<ShipErrorCode, number>;

/** The JSON body of every Ship error response. */
export interface ShipErrorBody {
  error: { code: ShipErrorCode; message: string; details: Record<string, unknown> };
}

/** Any failure Ship reports to its caller; mapped to a response by the app's onError. */
export class ShipError extends Error {
  readonly code: ShipErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ShipErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "ShipError";
    this.code = code;
    this.details = options.details ?? {};
  }

  /** HTTP status for this error's code. */
  get status(): (typeof SHIP_ERROR_STATUS)[ShipErrorCode] {
    return SHIP_ERROR_STATUS[this.code];
  }

  /** The response body. */
  toBody(): ShipErrorBody {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

/**
 * The body of an `error` event in a stream: Bay's error model, with the request id
 * Bay sent (so Bay passes the event through unchanged). Anything but a ShipError
 * is an internal_error without internals.
 */
export function errorEventBody(err: unknown, requestId: string) {
  const e = err instanceof ShipError ? err : new ShipError("internal_error", "internal error", { cause: err });
  if (e.code === "internal_error") console.error("[ship] internal error in a stream:", err);
  return { error: { code: e.code, message: e.message, request_id: requestId, details: e.details } };
}
