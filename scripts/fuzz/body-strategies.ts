/**
 * Strategies that change the body of a request: one JSON field, the whole
 * body, the multipart form of an upload, or an idempotent create sent twice;
 * and the verdicts on bodies (when the spec forbids success).
 */
import type { Rng } from "../lib/rng.ts";
import { BAD_JSON, HOSTILE_PATHS, HOSTILE_STRINGS, ODD_CONTENT_TYPES } from "./corpus.ts";
import type { Draft } from "./draft.ts";
import { e2bEscapes, isE2b } from "./e2b.ts";
import { type Schema, validate } from "./json-schema.ts";
import { escapes, multipartCase, type MultipartTag } from "./multipart.ts";
import type { Contract, Operation } from "./spec.ts";
import { hintFor, hostileValue } from "./values.ts";

export interface Limits {
  maxBodyBytes: number;
  maxUploadBytes: number;
}

/** What every strategy may consult. */
export interface GenContext {
  contract: Contract;
  limits: Limits;
}

export const isUpload = (op: Operation) => op.body?.contentType === "multipart/form-data";
export const hasJsonBody = (op: Operation) => op.body?.contentType.includes("json") === true;
const pathFields = new Set(["path", "cwd"]);

/** Collects why the JSON value the server will parse (`sent`, default: the draft's body) breaks the body schema. */
export function judgeJson(d: Draft, sent: unknown = JSON.parse(JSON.stringify(d.json))): void {
  const schema = d.op.body?.schema;
  if (!schema) return;
  const errors = validate(schema, sent);
  if (errors.length) d.reject.push(`body breaks the schema: ${errors[0]}`);
  for (const f of pathFields) {
    const v = (sent as Record<string, unknown> | null)?.[f];
    if (typeof v === "string" && (isE2b(d.op) ? e2bEscapes(v) : escapes(v))) d.reject.push(`body.${f} escapes /workspace`);
  }
}

/** The verdict for a body sent as text: not JSON, a missing required body, or JSON breaking the schema. */
function judgeText(d: Draft, text: string): void {
  const t = text.replace(/^\ufeff/, "");
  if (t.trim() === "") {
    if (d.op.body?.required) d.reject.push("required body missing");
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch {
    d.reject.push("body is not JSON");
    return;
  }
  judgeJson(d, value);
}

export function valid(rng: Rng, d: Draft, ctx: GenContext): void {
  if (isUpload(d.op)) upload(rng, d, ctx, "path-first");
}

export function upload(rng: Rng, d: Draft, ctx: GenContext, only?: MultipartTag): void {
  const validPath = String(rng.pick(hintFor(d.op.id, "path") ?? ["fuzz/up.bin"]));
  if (only === undefined && rng.chance(0.25)) {
    rawUpload(rng, d, ctx, validPath);
    return;
  }
  const c = multipartCase(rng, validPath, ctx.limits.maxUploadBytes, only);
  d.mutation = d.strategy === "multipart" || d.strategy === "valid" ? `multipart ${c.tag}` : `${d.mutation}; multipart ${c.tag}`;
  d.bodyText = c.body;
  d.headers.push(["Content-Type", c.contentType]);
  if (c.tag === "query-path-only" || (c.tag !== "only-file" && rng.chance(0.2))) d.query.push(["path", validPath]);
  const pathInQuery = d.query.some(([k]) => k === "path");
  if (c.mustReject && !(c.tag === "only-file" && pathInQuery)) d.reject.push(c.mustReject);
}

/**
 * The file itself as the body (`application/octet-stream`), its path in the query:
 * valid, without a path, with a hostile path, declared or chunked, or over the limit.
 */
function rawUpload(rng: Rng, d: Draft, ctx: GenContext, validPath: string): void {
  const kind = rng.pick(["valid", "no-path", "hostile-path", "chunked", "over-limit"] as const);
  d.mutation = `raw upload ${kind}`;
  d.headers.push(["Content-Type", rng.pick(["application/octet-stream", "application/octet-stream; charset=binary"])]);
  d.bodyText = rng.bytes(kind === "over-limit" ? ctx.limits.maxUploadBytes + 1 : rng.pick([0, 1, 100, 70_000]));
  if (kind === "chunked") {
    d.transport = "raw";
    d.raw = { noLength: true, chunked: true };
    d.headers.push(["Transfer-Encoding", "chunked"]);
  }
  if (kind === "no-path") {
    d.reject.push("raw upload without ?path=");
    return;
  }
  if (kind === "hostile-path") {
    const [tag, v] = rng.pick(HOSTILE_PATHS);
    d.mutation = `raw upload, path ${tag}`;
    d.query.push(["path", String(v)]);
    if (typeof v === "string" && escapes(v)) d.reject.push("raw upload path escapes /workspace");
    return;
  }
  d.query.push(["path", validPath]);
  if (kind === "over-limit") d.reject.push("raw upload over the upload limit");
}

export function multipart(rng: Rng, d: Draft, ctx: GenContext): void {
  upload(rng, d, ctx);
}

export function bodyField(rng: Rng, d: Draft, _ctx: GenContext): void {
  const schema = d.op.body!.schema;
  const obj: Record<string, unknown> = { ...((d.json as Record<string, unknown> | undefined) ?? {}) };
  d.json = obj;
  if (!d.headers.some(([k]) => k === "Content-Type")) d.headers.push(["Content-Type", "application/json"]);
  const props = Object.entries(schema.properties ?? {});
  const kind = rng.weighted({
    value: 8,
    drop: 1,
    extra: 1,
    map: props.some(([, s]) => typeof s.additionalProperties === "object") ? 2 : 0,
  });
  if (kind === "drop") {
    const name = rng.pick(props)[0];
    delete obj[name];
    d.mutation = `body.${name} dropped`;
  } else if (kind === "extra") {
    const name = rng.pick(["extra", "__proto__", "constructor", "owner", "id"]);
    obj[name] = rng.pick([1, "x", { a: 1 }]);
    d.mutation = `body.${name} added`;
  } else if (kind === "map") {
    const [name] = rng.pick(props.filter(([, s]) => typeof s.additionalProperties === "object"));
    const [tag, s] = rng.pick(HOSTILE_STRINGS);
    const variants: Array<[string, unknown]> = [
      [`key ${tag}`, { [s]: "v" }],
      [`value ${tag}`, { K: s }],
      ["value of wrong type", { K: 1 }],
      ["1000 entries", Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`K${i}`, "v"]))],
      ["key with =", { "A=B": "c" }],
    ];
    const [vt, v] = rng.pick(variants);
    obj[name] = v;
    d.mutation = `body.${name} ${vt}`;
  } else {
    const [name, sub] = rng.pick(props);
    const [tag, v] = pathFields.has(name) && rng.chance(0.5) ? rng.pick(HOSTILE_PATHS) : hostileValue(rng, sub as Schema);
    obj[name] = v;
    d.mutation = `body.${name} = ${tag}`;
  }
}

export function bodyWhole(rng: Rng, d: Draft, ctx: GenContext): void {
  if (isUpload(d.op)) {
    d.headers.push(["Content-Type", rng.pick(["application/json", "text/plain", "application/octet-stream"])]);
    d.bodyText = '{"path":"fuzz/x","file":"abc"}';
    d.mutation = "upload sent as a non-multipart body";
    d.reject.push("upload without a multipart body");
    return;
  }
  const setType = (ct: string | undefined) => {
    d.headers = d.headers.filter(([k]) => k !== "Content-Type");
    if (ct !== undefined) d.headers.push(["Content-Type", ct]);
  };
  const valid = JSON.stringify(d.json ?? {});
  if (!hasJsonBody(d.op)) {
    const big = rng.chance(0.3);
    d.bodyText = big ? " ".repeat(ctx.limits.maxBodyBytes + 1) : '{"unexpected":true}';
    setType("application/json");
    d.mutation = big ? "over-limit body on an operation without a body" : "body on an operation without a body";
    if (d.method === "GET" || d.method === "HEAD") d.transport = "raw";
    return;
  }
  const kind = rng.weighted({ badJson: 5, empty: 1, noType: 1, oddType: 2, atLimit: 1, overLimit: 1, chunked: 1 });
  switch (kind) {
    case "badJson": {
      const [tag, text] = rng.pick(BAD_JSON);
      d.bodyText = text;
      setType("application/json");
      d.mutation = `bad JSON ${tag}`;
      judgeText(d, text);
      return;
    }
    case "empty":
      d.bodyText = "";
      d.mutation = "empty body";
      judgeText(d, "");
      return;
    case "noType":
      d.bodyText = new TextEncoder().encode(valid);
      setType(undefined);
      d.mutation = "JSON body without Content-Type";
      return;
    case "oddType": {
      const ct = rng.pick(ODD_CONTENT_TYPES);
      d.bodyText = valid;
      setType(ct);
      d.mutation = `Content-Type ${ct}`;
      return;
    }
    case "atLimit":
    case "overLimit": {
      const size = ctx.limits.maxBodyBytes + (kind === "overLimit" ? 1 : 0);
      d.bodyText = valid + " ".repeat(Math.max(0, size - Buffer.byteLength(valid)));
      setType("application/json");
      d.mutation = kind === "atLimit" ? "body exactly max_body_bytes" : "body max_body_bytes + 1";
      if (kind === "overLimit") d.reject.push("body over max_body_bytes");
      else judgeText(d, valid);
      return;
    }
    case "chunked":
      d.transport = "raw";
      // Chunked once placeholders are filled in: their ids change the length.
      d.raw = { noLength: true, chunked: true };
      setType("application/json");
      d.headers.push(["Transfer-Encoding", "chunked"]);
      d.bodyText = valid;
      d.mutation = "chunked JSON body";
      judgeText(d, valid);
      return;
  }
}

export function replay(rng: Rng, d: Draft, _ctx: GenContext): void {
  d.headers = d.headers.filter(([k]) => k !== "Idempotency-Key");
  d.headers.push(["Idempotency-Key", `fz-replay-${rng.uint32().toString(36)}`]);
  d.repeat = true;
  if (rng.chance(0.5)) {
    d.json = rng.pick([{ ttl: -5 }, { profile: "no-such-profile" }, { size_limit_mb: 0 }, { workspace_id: "{{ws.other}}" }, { extra: 1 }]);
    d.mutation = `replay of ${JSON.stringify(d.json)}`;
  } else d.mutation = "replay of a valid create";
  if (!d.headers.some(([k]) => k === "Content-Type")) d.headers.push(["Content-Type", "application/json"]);
}
