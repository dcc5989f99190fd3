import { BayError } from "../../errors.ts";

/** The parts of a dockerode / docker-modem / socket error we look at. */
interface EngineErrorLike {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string } | null;
}

/** Socket-level codes that mean "the engine is not there", not "the request was bad". */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EACCES",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

const asEngineError = (err: unknown): EngineErrorLike =>
  typeof err === "object" && err !== null ? (err as EngineErrorLike) : { message: String(err) };

/** HTTP status the engine answered with, if it answered at all. */
export const engineStatus = (err: unknown): number | undefined => asEngineError(err).statusCode;

/** The engine's own message, without docker-modem's "(HTTP code N) reason -" wrapper. */
export const engineMessage = (err: unknown): string => {
  const e = asEngineError(err);
  // Streamed answers carry no parsed json, only the wrapped text; its "reason" is
  // docker-modem's guess per status code (e.g. "no such container" for any 404).
  const text = e.json?.message ?? e.message?.replace(/^\(HTTP code \d+\) [^-]*- /, "");
  return (text ?? "unknown engine error").trim();
};

/** True when the engine answered 404 (container, volume, image or path missing). */
export const isNotFound = (err: unknown): boolean => engineStatus(err) === 404;

/** True when the request never reached the engine (socket missing, refused, denied). */
export const isUnreachable = (err: unknown): boolean => {
  const e = asEngineError(err);
  return e.statusCode === undefined && e.code !== undefined && UNREACHABLE_CODES.has(e.code);
};

/** True when a call was cut off by its abort signal (a deadline). */
export const isAbort = (err: unknown): boolean => {
  const e = err as { name?: string; code?: string } | null;
  return e?.name === "AbortError" || e?.name === "TimeoutError" || e?.code === "ABORT_ERR";
};

/**
 * Translates anything dockerode throws into a `BayError`. `what` names the operation
 * and object ("inspect container abc"); it and the engine's own words go to the log
 * only (`internal`), never to a client: the message a client may see is generic.
 * `timeoutMs` is the deadline the call ran under, if any: a call cut off by it is an
 * engine that does not answer (503, like one that cannot be reached), not a bad request.
 */
export function translateDockerError(err: unknown, what: string, timeoutMs?: number): BayError {
  if (err instanceof BayError) return err;
  const e = asEngineError(err);
  const internal = {
    operation: what,
    engine_message: engineMessage(err),
    engine_status: e.statusCode ?? null,
    engine_code: e.code ?? null,
  };
  if (timeoutMs !== undefined && isAbort(err)) {
    return new BayError("driver_unavailable", `the container engine did not answer within ${timeoutMs} ms`, {
      retryAfter: 5,
      details: { reason: "engine_timeout", timeout_ms: timeoutMs },
      internal,
      cause: err,
    });
  }
  if (isUnreachable(err)) {
    return new BayError("driver_unavailable", "the container engine is unreachable", { retryAfter: 5, internal, cause: err });
  }
  switch (e.statusCode) {
    case 404:
      return new BayError("not_found", "the container engine has no such object", { internal, cause: err });
    case 409:
      return new BayError("conflict", "the container engine refused a conflicting change", { internal, cause: err });
    default:
      return new BayError("internal_error", "the container engine failed", { internal, cause: err });
  }
}

/**
 * Runs an engine call under a deadline (`timeoutMs`; the call gets the signal to
 * pass to dockerode as `abortSignal`) and translates whatever it throws.
 */
export async function engineCall<T>(
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
  timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
): Promise<T> {
  try {
    return await call(AbortSignal.timeout(timeoutMs));
  } catch (err) {
    throw translateDockerError(err, what, timeoutMs);
  }
}

/** Deadline of one engine call when the driver is given none (`driver.call_timeout`). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** The error for a create whose image is not present locally (Bay never pulls). */
export const imageNotFound = (image: string, cause: unknown) =>
  new BayError("internal_error", `image not found: ${image}`, { details: { image, reason: "image_missing" }, cause });

/** True for the 404 Docker answers on create when the image is missing. */
export const isImageMissing = (err: unknown): boolean => isNotFound(err) && /no such image/i.test(engineMessage(err));

/** Rejects with the signal's reason when it fires first (for the calls dockerode cannot abort). */
export function raceDeadline<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    call.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
