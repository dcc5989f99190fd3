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
import { assertSupported, type Schema } from "./json-schema.ts";

export const SPEC_FILE = join(import.meta.dir, "../../openapi/bay.v1.yaml");

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
}

export interface Operation {
  id: string;
  method: string;
  /** Template, e.g. `/v1/sandboxes/{id}/filesystem/files`. */
  path: string;
  params: Param[];
  body?: { required: boolean; contentType: string; schema: Schema };
  responses: Map<number, ResponseSpec>;
  /** False for the few operations with `security: []`. */
  authenticated: boolean;
}

export interface Contract {
  operations: Operation[];
  /** Every error code: the discriminator values of ErrorInfo. */
  errorCodes: string[];
  /** The ErrorBody schema. */
  errorBody: Schema;
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

/** Loads and flattens the spec file. */
export function loadContract(file = SPEC_FILE): Contract {
  const doc = parse(readFileSync(file, "utf8")) as Doc;
  const mapping = doc.components.schemas.ErrorInfo?.discriminator?.mapping as Record<string, string> | undefined;
  if (!mapping) throw new Error("the spec's ErrorInfo has no discriminator mapping: cannot tell its error codes");
  const errorCodes = Object.keys(mapping);
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
          content.set(type, type.includes("json") ? media.schema : undefined);
        const named = [...String(r.description ?? "").matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
        const code = Number(status);
        responses.set(code, {
          content,
          errorCodes: code >= 400 ? named.filter((n) => errorCodes.includes(n)) : [],
          headers: Object.keys(r.headers ?? {}).map((h) => h.toLowerCase()),
          ...(rawStream === "#/components/schemas/ExecEvents" ? { execEvents: true } : {}),
        });
      }
      const security = op.security ?? doc.security ?? [];
      operations.push({
        id: op.operationId,
        method: method.toUpperCase(),
        path,
        params,
        body,
        responses,
        authenticated: Array.isArray(security) && security.length > 0,
      });
    }
  }
  return { operations, errorCodes, errorBody: inline(doc, doc.components.schemas.ErrorBody) };
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
  assertSupported(contract.errorBody, "ErrorBody", warn);
}
