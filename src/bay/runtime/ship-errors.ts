/** How a Ship's error body becomes Bay's error (for a JSON answer and for a stream's `error` event alike). */
import { BayError, ERROR_CODES, type ErrorCode } from "../errors.ts";
import { ShipBadResponseError } from "./errors/ship-bad-response-error.ts";
import { ShipUnreachableError } from "./errors/ship-unreachable-error.ts";
import { ShipWrongSessionError } from "./errors/ship-wrong-session-error.ts";

/** Ship error codes that pass through to the client unchanged; anything else becomes ship_error. */
const PASS_THROUGH = new Set<ErrorCode>([
  "validation_error",
  "invalid_path",
  "file_not_found",
  "not_found",
  "conflict",
  "payload_too_large",
  "quota_exceeded",
  "timeout",
]);

/**
 * A Ship error body as Bay's error: the codes that are the caller's (not found,
 * validation, timeout, …) pass through with their details; anything else is a
 * ship_error. `status` is the Ship's HTTP status (null for an event in a stream).
 */
export function fromShipErrorBody(body: unknown, status: number | null): BayError {
  const err = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)?.error;
  const code = err?.code as ErrorCode | undefined;
  if (code && (ERROR_CODES as readonly string[]).includes(code) && PASS_THROUGH.has(code)) {
    return new BayError(code, err?.message ?? code, { details: err?.details ?? {} });
  }
  return new ShipBadResponseError(`sandbox runtime failed: ${err?.message ?? (status ? `HTTP ${status}` : "in its stream")}`, {
    ...(status ? { ship_status: status } : {}),
    ship_code: code ?? null,
  });
}

/** A Ship's error answer as Bay's error; a 401 means a Ship that refuses this session's secret: another session's. */
export async function fromShipErrorResponse(res: Response): Promise<BayError> {
  const text = await res.text().catch(() => "");
  if (res.status === 401) return new ShipWrongSessionError();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  return fromShipErrorBody(parsed, res.status);
}

/** Whether the call never ran in the Ship, so it may be sent to a fresh session. */
export const notExecuted = (e: unknown): boolean => e instanceof ShipWrongSessionError || (e instanceof ShipUnreachableError && e.refused);

/** Whether an error means the runtime may be gone (worth checking the container). */
export const isUnreachable = (e: unknown): boolean => e instanceof ShipUnreachableError || e instanceof ShipWrongSessionError;

/** Ship's error on a forwarded HEAD, from its status (Ship's status table, src/ship/errors.ts). */
export function headError(status: number): BayError {
  const code = ({ 400: "validation_error", 404: "not_found", 409: "conflict", 413: "payload_too_large", 504: "timeout" } as const)[status];
  return code
    ? new BayError(code, `the sandbox runtime refused the request (HTTP ${status})`)
    : new ShipBadResponseError(`sandbox runtime failed: HTTP ${status}`, { ship_status: status });
}
