/**
 * The contract checks applied to every answer: a known status for the
 * operation, the error body of its API (Bay's with its request id, E2B's with
 * its status; apis.ts), a success body matching the response schema (an exec's
 * event stream, the E2B interpreter's NDJSON), X-Request-Id on everything,
 * Retry-After where promised, and no success for a request the spec refuses.
 * Also decides which 5xx are legitimate (see `serverError`).
 */
import { DOCS_SLASH_ROUTE } from "../../src/bay/api/routes/docs.ts";
import { modelForPath, routedPath } from "./apis.ts";
import { judgeConnect } from "./envd-rpc-check.ts";
import { FUZZ_SANDBOX_DOMAIN } from "./head-strategies.ts";
import { validate } from "./json-schema.ts";
import { bareAnswerLimitation, closedLimitation, cutAnswerLimitation } from "./known.ts";
import { checkNdjson } from "./ndjson.ts";
import { checkExecEvents } from "./sse.ts";
import type { FuzzRequest } from "./request.ts";
import type { Outcome } from "./send.ts";
import { type Contract, matchOperation, type Operation } from "./spec.ts";

export interface Verdict {
  /** Operation the answer is judged against, or "(no operation)". */
  op: string;
  /** Stable reasons, for grouping. */
  violations: string[];
  /** Specifics of this instance (schema paths, codes, bodies). */
  details: string[];
  /**
   * A 5xx answer. `legit` marks the ones the runtime can cause without a bug in
   * Bay: 503 session_not_ready / driver_unavailable (a start that did not become
   * ready in time, an engine that did not answer) and 504 timeout (work that ran
   * past its deadline), each only where the operation lists it; and a 502
   * ship_error while Docker reports the sandbox's container dying during the call
   * (`runtimeFault`: a stop racing the call, the container's own limits). A 500
   * is always a bug, and so is any other 502: the fuzzer injects no runtime
   * fault, so a Ship failure with the container alive comes from the request.
   */
  serverError?: { status: number; code: string | null; legit: boolean; cause?: string };
  /** A documented limitation of the HTTP server under Bay (known.ts): counted, not a finding. */
  known?: string;
}

/** Codes for answers to requests that match no operation (routing, framing, auth, limits). */
const UNROUTED_CODES: Record<number, string[]> = {
  400: ["validation_error", "invalid_path"],
  401: ["unauthorized"],
  403: ["forbidden"],
  404: ["not_found"],
  405: ["method_not_allowed"],
  413: ["payload_too_large"],
  429: ["quota_exceeded"],
  501: ["not_implemented"],
};
const LEGIT_5XX: Record<number, string[]> = { 503: ["session_not_ready", "driver_unavailable"], 504: ["timeout"] };
const STANDARD_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]);
const VISIBLE_ID = /^[\x21-\x7e]{1,128}$/;

/** The path Bay's router sees: the target's path with dot segments resolved, as the server's URL parser does. */
function pathOf(target: string): string | undefined {
  if (target === "*") return undefined;
  try {
    return new URL(target, "http://127.0.0.1").pathname;
  } catch {
    return undefined;
  }
}

const toSandboxHost = (req: FuzzRequest): boolean =>
  req.headers.some(([k, v]) => k.toLowerCase() === "host" && v.toLowerCase().endsWith(`.${FUZZ_SANDBOX_DOMAIN}`));

/** The operation a request lands on, if any. */
export function operationFor(contract: Contract, req: FuzzRequest, target: string): Operation | undefined {
  if (req.raw?.verbatim !== undefined) return undefined;
  // A sandbox's host is its server's, whatever the path: no operation of Bay's API.
  if (toSandboxHost(req)) return undefined;
  if (req.raw?.line !== undefined && !req.raw.line.startsWith(`${req.method} ${req.target} `)) return undefined;
  const path = pathOf(target);
  return path === undefined ? undefined : matchOperation(contract.operations, req.method, routedPath(contract.apis, path));
}

/** The kind of request, for grouping answers that do not depend on the operation. */
const caseOf = (req: FuzzRequest): string => req.mutation.replace(/^raw /, "");

const header = (o: Outcome, name: string): string[] => o.headers.filter(([k]) => k === name).map(([, v]) => v);

function parseJson(body: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(new TextDecoder().decode(body)) };
  } catch {
    return { ok: false };
  }
}

/** The JSON-RPC messages of an MCP answer, sent as JSON or as an SSE stream of `data:` lines. */
export function rpcMessages(o: Outcome): Array<Record<string, unknown>> {
  const text = new TextDecoder().decode(o.body);
  const isSse = (header(o, "content-type")[0] ?? "").startsWith("text/event-stream");
  const chunks = isSse ? [...text.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]!) : [text];
  const out: Array<Record<string, unknown>> = [];
  for (const c of chunks) {
    try {
      const v = JSON.parse(c) as unknown;
      for (const m of Array.isArray(v) ? v : [v]) if (m && typeof m === "object") out.push(m as Record<string, unknown>);
    } catch {
      // not JSON: the schema checks say so
    }
  }
  return out;
}

/** Judges one answer. `target` is the request target with placeholders filled in. */
export function judge(contract: Contract, req: FuzzRequest, target: string, o: Outcome, runtimeFault?: string): Verdict {
  // envd's Connect RPC calls are in no spec: judged by the Connect protocol and their descriptors.
  if (req.connect) return judgeConnect(req, o, runtimeFault);
  const op = operationFor(contract, req, target);
  const v: Verdict = { op: op?.id ?? "(no operation)", violations: [], details: [] };
  const fail = (reason: string, detail?: string) => {
    v.violations.push(reason);
    if (detail) v.details.push(detail);
  };
  if (o.kind === "timeout") {
    fail(req.syntax === "valid" ? "no answer before the deadline" : `no answer and the connection held open (${req.syntax} request)`);
    return v;
  }
  if (o.kind === "closed") {
    // The reset after an unread body can cut the answer in its head as well as in its body.
    v.known = closedLimitation(req) ?? (o.detail?.startsWith("partial answer") ? cutAnswerLimitation(req, op) : undefined);
    if (req.syntax === "valid" && !v.known) fail(`connection closed without an answer [${caseOf(req)}]`, o.detail);
    return v;
  }
  if (o.kind === "error") {
    fail("answer is not HTTP", o.detail);
    return v;
  }
  if (o.kind !== "response") return v;

  const status = o.status;
  if (o.cut) {
    v.known = cutAnswerLimitation(req, op);
    if (!v.known) fail(`answer cut short: the connection ended inside the body [${caseOf(req)}]`, `status ${status}`);
    return v;
  }
  const ids = header(o, "x-request-id");
  // An empty answer without X-Request-Id never went through Bay's app: the HTTP
  // server refused the request itself. One group per kind of request.
  if (ids.length === 0 && o.body.byteLength === 0 && status >= 400) {
    v.op = "(HTTP server, before Bay)";
    v.known = bareAnswerLimitation(req, status);
    if (v.known) return v;
    // A 431 always means one thing (a request head over the server's limit), whatever made it big.
    const kind = status === 431 ? "request head over the server's size limit" : caseOf(req);
    fail(`bare ${status} from the HTTP server: no error body, no X-Request-Id [${kind}]`);
    if (status >= 500) v.serverError = { status, code: null, legit: false };
    return v;
  }
  if (ids.length === 0 || ids[0] === "") fail("no X-Request-Id");
  const sentIds = req.headers.filter(([k]) => k.toLowerCase() === "x-request-id").map(([, x]) => x);
  if (sentIds.length === 1 && VISIBLE_ID.test(sentIds[0]!) && ids.length > 0 && ids[0] !== sentIds[0]) {
    fail("X-Request-Id not echoed", `sent ${sentIds[0]}, got ${ids[0]}`);
  }
  // A server's answer in the sandbox (the port operations): any status and body are its own.
  if (op?.id.startsWith("port") && header(o, "x-bay-upstream").length > 0) {
    if (!(header(o, "content-security-policy")[0] ?? "").startsWith("sandbox ")) fail("a server's answer without the sandbox CSP");
    if (header(o, "set-cookie").length > 0) fail("a server's Set-Cookie passed");
    return v;
  }
  const spec = op?.responses.get(status);
  if (op && !spec) fail(`status ${status} not in the spec for this operation`);
  // `/docs/` is not an operation (a path with a trailing slash cannot be one of the spec's): it redirects to getDocs.
  const docsSlash = !op && req.method === "GET" && status === 308 && pathOf(target) === DOCS_SLASH_ROUTE;
  if (docsSlash && header(o, "location")[0] !== `../docs${new URL(target, "http://127.0.0.1").search}`)
    fail("/docs/ redirects elsewhere than ../docs");
  if (!op && !docsSlash) {
    if (status < 400) fail(`${status} for a request that matches no operation`);
    else if (!UNROUTED_CODES[status]) fail(`status ${status} for a request that matches no operation`);
  }

  // The error model: the operation's API's; without one, the API whose base the path lies under (a sandbox host's is Bay's).
  const model = op?.api ?? modelForPath(contract.apis, toSandboxHost(req) ? undefined : pathOf(target));
  let code: string | null = null;
  let streamError: string | null | undefined;
  const parsed = req.method === "HEAD" ? undefined : parseJson(o.body);
  if (status >= 400 && req.method !== "HEAD") {
    const ct = header(o, "content-type")[0] ?? "";
    if (!parsed?.ok)
      fail(`error answer ${status} without the error body`, `body: ${JSON.stringify(new TextDecoder().decode(o.body.subarray(0, 120)))}`);
    else {
      const errs = validate(model.errorBody, parsed.value);
      if (errs.length) fail(`error answer ${status} breaks ${model.name === "bay" ? "ErrorBody" : "E2B's error body"}`, errs[0]);
      code = model.errorCode(parsed.value);
      for (const [reason, detail] of model.errorChecks(parsed.value, status, ids[0])) fail(reason, detail);
      const named = op ? (spec?.errorCodes ?? []) : model.errorCodes.length > 0 ? (UNROUTED_CODES[status] ?? []) : [];
      if (code && named.length > 0 && !named.includes(code))
        fail(`code ${code} for status ${status}, where the spec names ${named.join("|")}`);
      if (!/^application\/json/i.test(ct)) fail(`error answer ${status} not served as application/json`, `Content-Type: ${ct}`);
    }
    if ((status === 429 || status === 503) && !/^\d+$/.test(header(o, "retry-after")[0] ?? "")) fail(`${status} without Retry-After`);
    if (status === 405 && (header(o, "allow")[0] ?? "").split(/,\s*/).includes(req.method)) fail("405 although Allow lists the method");
  }
  if (status >= 200 && status < 300) {
    if (req.mustReject) fail(`success for a request the spec refuses (${req.mustReject.split(":")[0]})`, req.mustReject);
    if (req.mustFailRpc && status === 200) {
      const ok = rpcMessages(o).filter((m) => m.error === undefined && (m.result as { isError?: unknown } | undefined)?.isError !== true);
      if (ok.length > 0) fail(`MCP answered a result where it must fail (${req.mustFailRpc})`, JSON.stringify(ok[0]).slice(0, 200));
    }
    if (spec && req.method !== "HEAD") {
      if (status === 204 && o.body.byteLength > 0) fail("204 with a body");
      const type = (header(o, "content-type")[0] ?? "").split(";")[0]!.trim().toLowerCase();
      if (spec.content.size > 0 && !spec.content.has(type))
        fail(`success served as ${type || "no Content-Type"}, not a type the spec lists`);
      const schema = spec.content.get(type);
      // Only fetch reads a stream's events (a raw request keeps its head); an exec's stream ends by design.
      if (type === "text/event-stream" && spec.execEvents && req.transport === "fetch" && spec.content.get("application/json")) {
        const stream = checkExecEvents(new TextDecoder().decode(o.body), spec.content.get("application/json")!, contract.errorBody);
        for (const x of stream.violations) fail(x.replace(/: .*/, ""), x);
        if (stream.end.kind === "error") streamError = stream.end.code;
      }
      // The code interpreter's NDJSON: read to its end (it ends with its run).
      if (spec.ndjson && type === "application/x-ndjson" && req.transport === "fetch") {
        const stream = checkNdjson(new TextDecoder().decode(o.body));
        for (const x of stream.violations) fail(x.replace(/: .*/, ""), x);
        if (stream.end === "cut") streamError = "ship_error";
      }
      if (schema) {
        if (!parsed?.ok) fail("success body is not JSON");
        else {
          const errs = validate(schema, parsed.value);
          if (errs.length) fail("success body breaks the response schema", errs.slice(0, 3).join("; "));
        }
      }
    }
  }
  // A stream that started (200) and then failed is judged like the status its error code maps to.
  if (streamError === "internal_error") fail("stream ended with internal_error");
  else if (streamError === "ship_error" && runtimeFault === undefined) fail("stream ended with ship_error without any runtime fault");
  if (status >= 500) {
    const listed = spec !== undefined && v.violations.length === 0;
    const declared = listed && op ? op.api.declared5xx(op.id, status, req.mustReject !== undefined) : undefined;
    const legit = ((LEGIT_5XX[status]?.includes(code ?? "") ?? false) && listed) || declared !== undefined;
    // A 502 is the runtime's doing only when the sandbox's container really died during the call.
    const died = status === 502 && code === "ship_error" && listed && runtimeFault !== undefined;
    // On a port operation, a 502 can be the server's in the sandbox (user code): Ship says so (upstream_error),
    // e.g. a fixture's HTTP server refusing a WebSocket handshake.
    const shipCode =
      (parsed?.ok ? (parsed.value as { error?: { details?: { ship_code?: unknown } } })?.error?.details?.ship_code : undefined) ?? null;
    const serversOwn =
      status === 502 && code === "ship_error" && listed && op?.id.startsWith("port") === true && shipCode === "upstream_error";
    const unknownMethod = status === 501 && !STANDARD_METHODS.has(req.method) && v.violations.length === 0;
    const cause = died
      ? { cause: `container ${runtimeFault}` }
      : serversOwn
        ? { cause: "the sandbox's server" }
        : declared
          ? { cause: declared }
          : {};
    v.serverError = { status, code, legit: legit || died || serversOwn || unknownMethod, ...cause };
    if (status === 500) fail("500 internal_error");
    else if (status === 502 && !died && !serversOwn && !declared) fail("502 ship_error without any runtime fault");
    else if (!legit && !died && !serversOwn && !unknownMethod && !v.violations.some((x) => x.startsWith("status")))
      fail(`${status} ${code ?? ""} not explained by the runtime`);
  }
  return v;
}
