/**
 * Bay's errors as envd's Connect clients expect them. Apart from errors.ts so that
 * Connect RPC is loaded with envd's services (on the first envd call), not with Bay.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { BayError, type ErrorCode } from "../../errors.ts";
import { errorMessage, type Logger } from "../../logger.ts";

const CONNECT_CODE: Record<ErrorCode, Code> = {
  validation_error: Code.InvalidArgument,
  invalid_path: Code.InvalidArgument,
  capability_not_supported: Code.FailedPrecondition,
  unauthorized: Code.Unauthenticated,
  forbidden: Code.PermissionDenied,
  not_found: Code.NotFound,
  file_not_found: Code.NotFound,
  method_not_allowed: Code.Unimplemented,
  conflict: Code.FailedPrecondition,
  sandbox_expired: Code.NotFound,
  payload_too_large: Code.ResourceExhausted,
  quota_exceeded: Code.ResourceExhausted,
  internal_error: Code.Internal,
  not_implemented: Code.Unimplemented,
  ship_error: Code.Unavailable,
  session_not_ready: Code.Unavailable,
  driver_unavailable: Code.Unavailable,
  database_unavailable: Code.Unavailable,
  timeout: Code.DeadlineExceeded,
};

/** Bay's codes for a path's own fault: a runtime's stream ending with one keeps its code. */
const PATH_FAULTS: ReadonlySet<string> = new Set<ErrorCode>(["file_not_found", "invalid_path"]);

/**
 * The Connect code for the error event a sandbox's runtime ended a stream with (its
 * `error.code`, one of Bay's): NotFound for a watched directory that went away,
 * InvalidArgument for a path the runtime refused; Unavailable for anything else (the
 * runtime failed, its session or sandbox ended, or it named nothing).
 */
export function streamEndCode(code: unknown): Code {
  return typeof code === "string" && PATH_FAULTS.has(code) ? CONNECT_CODE[code as ErrorCode] : Code.Unavailable;
}

/**
 * A failure as envd's Connect clients expect it. Messages of Bay's errors are
 * safe to show; anything else is logged and answered as a bare internal error.
 */
export function toConnectError(e: unknown, logger: Logger): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof BayError) {
    if (e.status >= 500) logger.warn("envd call failed", { code: e.code, error: e.message, ...e.internal });
    return new ConnectError(e.message, CONNECT_CODE[e.code]);
  }
  logger.error("unexpected envd error", { error: errorMessage(e), stack: (e as Error)?.stack });
  return new ConnectError("internal error", Code.Internal);
}
