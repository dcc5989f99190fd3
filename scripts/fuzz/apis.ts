/**
 * What differs between the APIs the fuzzer covers in one run (Bay's own,
 * openapi/bay.v1.yaml, and its E2B-compatible one, openapi/e2b.v1.yaml): where
 * the spec's paths live under Bay's origin, the error body and how its code is
 * read, and the checks an error body gets beyond its schema. Everything else
 * (statuses, schemas, 5xx rules) is judged the same way for both.
 */
import type { Schema } from "./json-schema.ts";

export interface ApiModel {
  name: "bay" | "e2b";
  /** The path of the spec's server URL: every operation's path starts with it ("" for Bay). */
  base: string;
  /** Paths (after the base) also served at the origin root: E2B's `/files`, for the SDKs' signed URLs. */
  rootAliases: string[];
  /** The error body every failure answers with. */
  errorBody: Schema;
  /** The error codes a response's description may name (Bay's ErrorInfo); empty when the body carries none. */
  errorCodes: string[];
  /** The error code of a parsed error body: Bay's `error.code`; for E2B, the one Bay code its status stands for. */
  errorCode(body: unknown): string | null;
  /** What is wrong with a parsed error body beyond its schema: [reason, detail] pairs. */
  errorChecks(body: unknown, status: number, requestId: string | undefined): Array<[string, string]>;
  /**
   * Why a 5xx is the answer the spec itself gives this operation for a state that is no fault, if it is
   * (`refused`: the request names something the caller may not use, e.g. a killed sandbox).
   */
  declared5xx(opId: string, status: number, refused: boolean): string | undefined;
}

export function bayModel(errorBody: Schema, errorCodes: string[]): ApiModel {
  return {
    name: "bay",
    base: "",
    rootAliases: [],
    errorBody,
    errorCodes,
    errorCode(body) {
      const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
      return typeof code === "string" ? code : null;
    },
    errorChecks(body, _status, requestId) {
      const rid = (body as { error?: { request_id?: unknown } } | null)?.error?.request_id;
      if (typeof rid === "string" && requestId !== undefined && rid !== requestId)
        return [["error body request_id differs from X-Request-Id", `body ${rid}, header ${requestId}`]];
      return [];
    },
    declared5xx: () => undefined,
  };
}

/**
 * E2B's body is `{code, message}`, `code` being the HTTP status: the Bay code an
 * answer stands for is read from the status (each 5xx has one, or two legitimate
 * ones for 503), so the 5xx rules apply unchanged.
 */
const CODE_OF_STATUS: Record<number, string> = {
  500: "internal_error",
  501: "not_implemented",
  502: "ship_error",
  503: "session_not_ready",
  504: "timeout",
};

/** Operations whose 501 is the spec's answer for what Bay cannot do. */
const NOT_AVAILABLE = new Set(["e2bPauseSandbox", "e2bUpdateSandboxNetwork", "e2bCreateSandbox", "e2bCreateSandboxLegacy"]);

export function e2bModel(errorBody: Schema, base: string): ApiModel {
  return {
    name: "e2b",
    base,
    rootAliases: ["/files"],
    errorBody,
    errorCodes: [],
    errorCode(body) {
      const code = (body as { code?: unknown } | null)?.code;
      return typeof code === "number" ? (CODE_OF_STATUS[code] ?? String(code)) : null;
    },
    errorChecks(body, status) {
      const code = (body as { code?: unknown } | null)?.code;
      if (typeof code === "number" && code !== status)
        return [["error body code differs from the HTTP status", `code ${code}, status ${status}`]];
      return [];
    },
    declared5xx: (opId, status, refused) => {
      // envd's /health with E2b-Sandbox-Id: 502 is how envd says its sandbox is not running (the spec's summary);
      // for the live sandbox with its token, a 502 is a finding.
      if (opId === "e2bHealth" && status === 502 && refused) return "envd of a sandbox that is not running";
      // What Bay cannot do (pause, per-sandbox network rules): 501, as the spec says.
      if (status === 501 && NOT_AVAILABLE.has(opId)) return "not available on Bay, as the spec says";
      return undefined;
    },
  };
}

/**
 * The path as Bay routes it: slashes right after an API's base count as one
 * (Bay's routedPath: SDKs that join a base URL ending in `/` and a path send `/e2b//…`),
 * and a root alias is its API's path.
 */
export function routedPath(models: ApiModel[], path: string): string {
  for (const m of models) {
    if (m.base !== "" && path.startsWith(`${m.base}//`)) return `${m.base}/${path.slice(m.base.length).replace(/^\/+/, "")}`;
    if (m.rootAliases.includes(path)) return `${m.base}${path}`;
  }
  return path;
}

/** The API whose error model an answer to `path` (no operation matched) is in: the API it is a root alias of, else the longest base it lies under. */
export function modelForPath(models: ApiModel[], path: string | undefined): ApiModel {
  let best = models[0]!;
  for (const m of models) {
    if (path !== undefined && m.rootAliases.includes(path)) return m;
    if (m.base === "" || path === undefined) continue;
    if ((path === m.base || path.startsWith(`${m.base}/`)) && m.base.length > best.base.length) best = m;
  }
  return best;
}
