/**
 * A request being built: path parameters, query, headers and body kept apart
 * until `assemble()` turns them into a FuzzRequest, so each strategy changes
 * one part of an otherwise valid request and the reasons it must be refused
 * are collected on the way.
 */
import type { Rng } from "../lib/rng.ts";
import { e2bBaseDraft, e2bEscapes, e2bForeignIds, e2bValidId, isE2b } from "./e2b.ts";
import { validMcpMessage } from "./mcp.ts";
import { escapes } from "./multipart.ts";
import { type FuzzRequest, pctEncode, type RawShape, type Syntax } from "./request.ts";
import type { Operation, Param } from "./spec.ts";
import { validObject, validValue } from "./values.ts";

export interface Draft {
  op: Operation;
  strategy: string;
  mutation: string;
  method: string;
  /** Path parameter values: placeholders (`{{sb.own}}`) or plain strings (percent-encoded on assembly). */
  path: Record<string, string>;
  /** Query pairs, unencoded (`rawQuery` replaces them when set). */
  query: Array<[string, string]>;
  rawQuery?: string;
  headers: Array<[string, string]>;
  /** JSON value of the body (`bodyText` wins when set). */
  json?: unknown;
  bodyText?: string | Uint8Array;
  transport: "fetch" | "raw";
  raw?: RawShape;
  syntax: Syntax;
  reject: string[];
  exclusive?: boolean;
  repeat?: boolean;
  /** Why a JSON-RPC answer must be an error (see FuzzRequest). */
  mustFailRpc?: string;
  /** See FuzzRequest. */
  streamEnds?: boolean;
  /** Sent at the origin root, without its API's base (one of the API's rootAliases). */
  atRoot?: boolean;
}

/** The port of the fixture server (fixtures.ts). */
export const SERVER_PORT = "8080";

const isSandboxPath = (op: Operation) => op.path.startsWith("/v1/sandboxes/{id}");
const isWorkspacePath = (op: Operation) => op.path.startsWith("/v1/workspaces/{id}");

/** A valid value for a path parameter of `op`: a fixture placeholder for ids, one of the enum otherwise. */
export function validId(rng: Rng, op: Operation, param: Param): string {
  if (isE2b(op)) return e2bValidId(rng, op, param);
  if (param.schema.enum) return String(rng.pick(param.schema.enum));
  if (param.name === "process_id") return "{{proc.bg}}";
  // A server in the sandbox with the running Ship (fixtures.ts): its port, and paths it serves or not.
  if (param.name === "port") return SERVER_PORT;
  if (param.name === "path") return rng.pick(["", "fuzz/hello.txt", "fuzz/", "missing.txt"]);
  if (param.name === "context_id")
    return op.id === "deleteContext" ? "{{ctx.doomed}}" : rng.pick(["{{ctx.own}}", "{{ctx.own}}", "ctx-default-python"]);
  // Contexts and background processes live in the sandbox with the running Ship.
  if (isSandboxPath(op) && /\{(context_id|process_id|port)\}/.test(op.path)) return "{{sb.own}}";
  if (isSandboxPath(op))
    return op.id === "deleteSandbox" ? "{{sb.doomed}}" : rng.pick(["{{sb.own}}", "{{sb.own}}", "{{sb.own}}", "{{sb.idle}}"]);
  if (isWorkspacePath(op)) return op.id === "deleteWorkspace" ? "{{ws.doomed}}" : rng.pick(["{{ws.ext}}", "{{ws.ext}}", "{{ws.managed}}"]);
  throw new Error(`no fixture for path parameter ${param.name} of ${op.id}`);
}

/** Values that name nothing the caller may use: another owner's, deleted or unknown ids; a name outside the enum. */
export function foreignIds(op: Operation, param: Param): string[] {
  if (isE2b(op)) return e2bForeignIds(param);
  if (param.schema.enum) return ["nope.js", "DOCS.JS", "docs.js.map", "swagger-ui.css%00"];
  if (param.name === "process_id") return ["{{proc.unknown}}"];
  if (param.name === "context_id") return ["{{ctx.unknown}}", "{{ctx.other}}"];
  // No port the caller may use: outside 1-65535, the runtime's own, one nothing listens on.
  if (param.name === "port") return ["0", "65536", "8123", "1"];
  if (param.name === "path") return ["nothing-here", ".%2e/.%2e"];
  if (isSandboxPath(op)) return ["{{sb.other}}", "{{sb.gone}}", "{{sb.unknown}}"];
  return ["{{ws.other}}", "{{ws.gone}}", "{{ws.unknown}}"];
}

const queryParams = (op: Operation) => op.params.filter((p) => p.in === "query");

/** A valid request for `op`: fixture ids, valid query and JSON body, the caller's owner. */
export function baseDraft(rng: Rng, op: Operation, index: number, strategy: string): Draft {
  const path: Record<string, string> = {};
  for (const p of op.params.filter((p) => p.in === "path")) path[p.name] = validId(rng, op, p);
  const query: Array<[string, string]> = [];
  for (const p of queryParams(op)) {
    if (p.required || (rng.chance(0.5) && !op.id.startsWith("upload")))
      query.push([p.name, String(validValue(rng, op.id, p.name, p.schema))]);
  }
  const headers: Array<[string, string]> = [["X-Owner", "alice"]];
  if (rng.chance(0.5)) headers.push(["X-Request-Id", `fz-${index}-${rng.uint32().toString(36)}`]);
  if (op.params.some((p) => p.name === "Idempotency-Key") && rng.chance(0.3))
    headers.push(["Idempotency-Key", `fz-key-${rng.uint32().toString(36)}`]);
  const d: Draft = {
    op,
    strategy,
    mutation: "valid",
    method: op.method,
    path,
    query,
    headers,
    transport: "fetch",
    syntax: "valid",
    reject: [],
  };
  if (op.id === "postMcp") {
    d.json = validMcpMessage(rng);
    headers.push(["Content-Type", "application/json"]);
    headers.push(["Accept", rng.pick(["application/json", "application/json, text/event-stream"])]);
  } else if (op.body?.contentType.includes("json")) {
    d.json = op.body.required || rng.chance(0.7) ? validObject(rng, op.id, op.body.schema) : undefined;
    if (d.json !== undefined) headers.push(["Content-Type", "application/json"]);
  }
  // Exec operations stream their run as SSE when asked (the MCP route sets its own Accept).
  if (op.id !== "postMcp" && op.responses.get(200)?.content.has("text/event-stream") && rng.chance(0.3))
    headers.push(["Accept", "text/event-stream"]);
  if (op.responses.get(200)?.execEvents) d.streamEnds = true;
  if (op.id === "stopSandbox") d.exclusive = true;
  if (isE2b(op)) e2bBaseDraft(rng, d);
  return d;
}

/** Why a query value breaks its parameter's schema (or escapes /workspace), if it clearly does. */
export function queryViolation(p: Param, value: string | undefined, e2b = false): string | undefined {
  if (value === undefined) return p.required ? `required query parameter ${p.name} missing` : undefined;
  const s = p.schema;
  if (s.type === "integer") {
    if (value.trim() === "") return undefined;
    const n = Number(value);
    if (Number.isNaN(n) || !Number.isInteger(n)) return `${p.name}=${value.slice(0, 20)} is not an integer`;
    if (!/^-?\d+$/.test(value)) return undefined; // `1e2`, ` 5`: lenient parsers may read these; no verdict
    if ((s.minimum !== undefined && n < s.minimum) || (s.maximum !== undefined && n > s.maximum)) return `${p.name}=${n} out of range`;
    return undefined;
  }
  const len = [...value].length;
  if (s.minLength !== undefined && len < s.minLength) return `${p.name} shorter than ${s.minLength}`;
  if (s.maxLength !== undefined && len > s.maxLength) return `${p.name} longer than ${s.maxLength}`;
  if (s.enum && !s.enum.includes(value)) return `${p.name} not one of ${s.enum.join("|")}`;
  if (p.name === "path" && (e2b ? e2bEscapes(value) : escapes(value))) return "path escapes /workspace (absolute, `..` or NUL)";
  return undefined;
}

/** A fixture placeholder: filled in with a URL-safe id just before sending. */
const PLACEHOLDER = /^\{\{[a-z]+\.[a-z]+\}\}$/;

function encodeTarget(d: Draft): string {
  const path = d.atRoot ? d.op.path.slice(d.op.api.base.length) : d.op.path;
  let target = path.replace(/\{([A-Za-z_]+)\}/g, (_, name: string) => {
    const v = d.path[name] ?? "";
    return v.startsWith("{{") ? v : d.transport === "raw" ? v : pctEncode(v);
  });
  const q = d.rawQuery ?? d.query.map(([k, v]) => `${pctEncode(k)}=${PLACEHOLDER.test(v) ? v : pctEncode(v)}`).join("&");
  if (q) target += `?${q}`;
  return target;
}

/** Deadline for the answer: exec calls may run their own timeout first. */
function deadlineMs(d: Draft): number {
  const t = (d.json as { timeout?: unknown } | undefined)?.timeout;
  const execTimeout = typeof t === "number" && Number.isInteger(t) && t >= 1 && t <= 300 ? t : 30;
  return d.op.id.startsWith("exec") ? Math.max(60, execTimeout + 30) * 1000 : 60_000;
}

export function assemble(d: Draft, index: number): FuzzRequest {
  const body = d.bodyText ?? (d.json === undefined ? undefined : JSON.stringify(d.json));
  return {
    index,
    aim: d.op.id,
    api: d.op.api.name,
    strategy: d.strategy,
    mutation: d.mutation,
    method: d.method,
    target: encodeTarget(d),
    headers: d.headers,
    ...(body !== undefined ? { body } : {}),
    transport: d.transport,
    ...(d.raw ? { raw: d.raw } : {}),
    syntax: d.syntax,
    ...(d.reject.length ? { mustReject: d.reject.join("; ") } : {}),
    ...(d.exclusive ? { exclusive: true } : {}),
    ...(d.repeat ? { repeat: true } : {}),
    ...(d.mustFailRpc ? { mustFailRpc: d.mustFailRpc } : {}),
    ...(d.streamEnds ? { streamEnds: true } : {}),
    timeoutMs: deadlineMs(d),
  };
}
