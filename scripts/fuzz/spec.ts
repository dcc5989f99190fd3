/**
 * The contract as the fuzzer sees it: every operation of openapi/bay.v1.yaml
 * with its parameters, request body and responses, every `$ref` inlined. For
 * each listed status it keeps the response schema and the error codes that the
 * response's description names (`validation_error`, …), so a 404 that carries
 * `internal_error` is caught as well as an unlisted status.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { type ApiModel, bayModel, e2bModel } from "./apis.ts";
import { assertSupported, type Schema } from "./json-schema.ts";

export const SPEC_FILE = join(import.meta.dir, "../../openapi/bay.v1.yaml");
export const E2B_SPEC_FILE = join(import.meta.dir, "../../openapi/e2b.v1.yaml");

export interface Param {
  name: string;
  in: "path" | "query" | "header";
  required: boolean;
  schema: Schema;
}

export interface ResponseSpec {
  /** The media types the spec allows for the body (none for 204), each with its schema when the body is JSON. */
  content: Map<string, Schema | undefined>;
  /** Error codes the description names; empty for success responses. */
  errorCodes: string[];
  /** Header names the spec lists, lower-case. */
  headers: string[];
  /** Its event stream is an exec's `ExecEvents` (it ends with one result or error event). */
  execEvents?: boolean;
  /** Its body is NDJSON, one JSON object a line (the E2B code interpreter's `/execute`). */
  ndjson?: boolean;
}

export interface Operation {
  id: string;
  method: string;
  /** Template under Bay's origin (the API's base included), e.g. `/v1/sandboxes/{id}/filesystem/files`, `/e2b/files`. */
  path: string;
  /** The API it belongs to: its base path, error model and auth. */
  api: ApiModel;
  params: Param[];
  body?: { required: boolean; contentType: string; schema: Schema };
  responses: Map<number, ResponseSpec>;
  /** False for the few operations with `security: []`. */
  authenticated: boolean;
}

export interface Contract {
  operations: Operation[];
  /** Bay's error codes: the discriminator values of ErrorInfo. */
  errorCodes: string[];
  /** Bay's ErrorBody schema. */
  errorBody: Schema;
  /** The APIs of the operations, Bay's first. */
  apis: ApiModel[];
}

type Doc = Record<string, any>;

/** Inlines every local `$ref` (the spec has no recursive schemas). */
function inline(doc: Doc, value: unknown, seen: string[] = []): any {
  if (Array.isArray(value)) return value.map((v) => inline(doc, v, seen));
  if (!value || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  if (typeof obj.$ref === "string") {
    const ref = obj.$ref;
    if (seen.includes(ref)) throw new Error(`recursive $ref ${ref}`);
    const m = /^#\/(.+)$/.exec(ref);
    if (!m) throw new Error(`only local $refs are supported: ${ref}`);
    let target: any = doc;
    for (const part of m[1]!.split("/")) target = target?.[part];
    if (target === undefined) throw new Error(`unresolved $ref ${ref}`);
    return inline(doc, target, [...seen, ref]);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = inline(doc, v, seen);
  return out;
}

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

/** The API a spec describes: Bay's (ErrorBody, whose ErrorInfo names the codes) or E2B's (`Error`, under its server's path). */
function apiOf(doc: Doc): ApiModel {
  const schemas = doc.components.schemas;
  if (schemas.ErrorBody) {
    const mapping = schemas.ErrorInfo?.discriminator?.mapping as Record<string, string> | undefined;
    if (!mapping) throw new Error("the spec's ErrorInfo has no discriminator mapping: cannot tell its error codes");
    return bayModel(inline(doc, schemas.ErrorBody), Object.keys(mapping));
  }
  if (!schemas.Error) throw new Error("the spec has neither ErrorBody nor Error: cannot tell its error body");
  const base = new URL(String(doc.servers?.[0]?.url ?? "/"), "http://127.0.0.1").pathname.replace(/\/+$/, "");
  return e2bModel(inline(doc, schemas.Error), base);
}

/** Both specs as one contract: Bay's operations, then the E2B-compatible API's (paths under its base). */
export function loadContracts(): Contract {
  const bay = loadContract(SPEC_FILE);
  const e2b = loadContract(E2B_SPEC_FILE);
  return { ...bay, operations: [...bay.operations, ...e2b.operations], apis: [...bay.apis, ...e2b.apis] };
}

/** Loads and flattens one spec file. */
export function loadContract(file = SPEC_FILE): Contract {
  const doc = parse(readFileSync(file, "utf8")) as Doc;
  const api = apiOf(doc);
  const errorCodes = api.errorCodes;
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<Doc>(doc.paths)) {
    const shared: Doc[] = inline(doc, item.parameters ?? []);
    for (const method of METHODS) {
      const raw = item[method] as Doc | undefined;
      if (!raw) continue;
      const op = inline(doc, raw) as Doc;
      const params: Param[] = [...shared, ...(op.parameters ?? [])].map((p: Doc) => ({
        name: p.name,
        in: p.in,
        required: p.required === true,
        schema: p.schema ?? {},
      }));
      let body: Operation["body"];
      if (op.requestBody) {
        const [contentType, media] = Object.entries<Doc>(op.requestBody.content)[0]!;
        body = { required: op.requestBody.required === true, contentType, schema: media.schema ?? {} };
      }
      const responses = new Map<number, ResponseSpec>();
      for (const [status, r] of Object.entries<Doc>(op.responses)) {
        const rawStream = (raw.responses?.[status] as Doc | undefined)?.content?.["text/event-stream"]?.schema?.$ref;
        const content = new Map<string, Schema | undefined>();
        for (const [type, media] of Object.entries<Doc>(r.content ?? {}))
          content.set(type, type.includes("json") && !type.includes("ndjson") ? media.schema : undefined);
        const named = [...String(r.description ?? "").matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
        const code = Number(status);
        responses.set(code, {
          content,
          errorCodes: code >= 400 ? named.filter((n) => errorCodes.includes(n)) : [],
          headers: Object.keys(r.headers ?? {}).map((h) => h.toLowerCase()),
          ...(rawStream === "#/components/schemas/ExecEvents" ? { execEvents: true } : {}),
          ...(r.content?.["application/x-ndjson"] ? { ndjson: true } : {}),
        });
      }
      const security = op.security ?? doc.security ?? [];
      operations.push({
        id: op.operationId,
        method: method.toUpperCase(),
        path: api.base + path,
        api,
        params,
        body,
        responses,
        authenticated: Array.isArray(security) && security.length > 0,
      });
    }
  }
  return { operations, errorCodes, errorBody: api.errorBody, apis: [api] };
}

/** Splits a template into literal segments and `{param}` names. */
export const templateSegments = (path: string): string[] => path.split("/").slice(1);

/** The operation whose template matches `method` and a raw path (segments compared undecoded), if any. */
export function matchOperation(ops: Operation[], method: string, rawPath: string): Operation | undefined {
  const segs = rawPath.split("/").slice(1);
  return ops.find((op) => {
    if (op.method !== method && !(method === "HEAD" && op.method === "GET")) return false;
    const t = templateSegments(op.path);
    // A trailing `{path}` (the port operations) is the rest of the path: any segments, even none.
    if (t.at(-1) === "{path}") {
      const head = t.slice(0, -1);
      return segs.length >= head.length && head.every((s, i) => (s.startsWith("{") ? segs[i]!.length > 0 : s === segs[i]));
    }
    return t.length === segs.length && t.every((s, i) => (s.startsWith("{") ? segs[i]!.length > 0 : s === segs[i]));
  });
}

/** Throws when any schema of the contract uses a keyword the fuzzer's validator does not check. */
export function assertContractSupported(contract: Contract, warn: (msg: string) => void = () => {}): void {
  for (const op of contract.operations) {
    for (const p of op.params) assertSupported(p.schema, `${op.id} parameter ${p.name}`, warn);
    if (op.body) assertSupported(op.body.schema, `${op.id} body`, warn);
    for (const [status, r] of op.responses)
      for (const [type, schema] of r.content) if (schema) assertSupported(schema, `${op.id} ${status} ${type}`, warn);
  }
  for (const api of contract.apis) assertSupported(api.errorBody, `${api.name} error body`, warn);
}
