/**
 * Turns the JSON-schema subset used in openapi/bay.v1.yaml into zod v4 source text.
 * Anything outside the subset throws, so the spec cannot silently outgrow the generator.
 */
import type { oas31 } from "openapi3-ts";

export type Schema = oas31.SchemaObject | oas31.ReferenceObject;

/** `#/components/schemas/Name` → `Name`. */
export function refName(ref: string): string {
  const m = /^#\/components\/schemas\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(ref);
  if (!m?.[1]) throw new Error(`unsupported $ref ${ref}`);
  return m[1];
}

const isRef = (s: unknown): s is oas31.ReferenceObject => typeof s === "object" && s !== null && "$ref" in s;

const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k));
const lit = (v: unknown) => JSON.stringify(v);

/** A one-line JSDoc, safe to embed. */
export function doc(text: string | undefined, pad: string): string {
  if (!text) return "";
  return `${pad}/** ${text
    .trim()
    .replace(/\*\//g, "*\\/")
    .replace(/\s*\n\s*/g, " ")} */\n`;
}

export interface ZodOptions {
  /** Query/path/header values arrive as strings: coerce numbers and booleans. */
  coerce?: boolean;
  /** Resolves a $ref for checks that need the target (coercion). */
  resolve?: (name: string) => oas31.SchemaObject | undefined;
}

/** Zod source for one schema. `indent` is the current indentation level (2 spaces). */
export function zodExpr(s: Schema, opts: ZodOptions = {}, indent = 0): string {
  if (isRef(s)) {
    const name = refName(s.$ref);
    const target = opts.resolve?.(name);
    if (opts.coerce && target && target.type !== "string")
      throw new Error(`$ref ${name} in a string-valued parameter must be a string schema`);
    return `z${name}`;
  }
  const all = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  const nullable = all.includes("null");
  const types = all.filter((t) => t !== "null");
  let out: string;
  if (s.oneOf) {
    out = `z.union([${s.oneOf.map((x) => zodExpr(x, opts, indent)).join(", ")}])`;
  } else if (s.const !== undefined) {
    out = `z.literal(${lit(s.const)})`;
  } else if (s.enum) {
    const values = s.enum.filter((v) => v !== null);
    if (!values.every((v) => typeof v === "string")) throw new Error("only string enums are supported");
    out = values.length === 1 ? `z.literal(${lit(values[0])})` : `z.enum([${values.map(lit).join(", ")}])`;
  } else if (types.length !== 1) {
    throw new Error(`unsupported type ${lit(s.type)}`);
  } else {
    out = typed(types[0]!, s, opts, indent);
  }
  if (nullable) out += ".nullable()";
  if (s.default !== undefined) out += `.default(${lit(s.default)})`;
  return out;
}

function typed(type: oas31.SchemaObjectType, s: oas31.SchemaObject, opts: ZodOptions, indent: number): string {
  switch (type) {
    case "string": {
      if (s.format === "binary") return "z.instanceof(Blob)";
      let out = s.format === "date-time" ? "z.iso.datetime({ offset: true })" : "z.string()";
      if (s.minLength !== undefined) out += `.min(${s.minLength})`;
      if (s.maxLength !== undefined) out += `.max(${s.maxLength})`;
      if (s.pattern !== undefined) out += `.regex(new RegExp(${lit(s.pattern)}))`;
      return out;
    }
    case "integer":
    case "number": {
      let out = opts.coerce ? "z.coerce.number()" : "z.number()";
      if (type === "integer") out += ".int()";
      if (s.minimum !== undefined) out += `.min(${s.minimum})`;
      if (s.maximum !== undefined) out += `.max(${s.maximum})`;
      if (typeof s.exclusiveMinimum === "number") out += `.gt(${s.exclusiveMinimum})`;
      if (typeof s.exclusiveMaximum === "number") out += `.lt(${s.exclusiveMaximum})`;
      return out;
    }
    case "boolean":
      return opts.coerce ? "z.stringbool()" : "z.boolean()";
    case "array": {
      if (!s.items) throw new Error("array without items");
      let out = `z.array(${zodExpr(s.items, { ...opts, coerce: false }, indent)})`;
      if (s.minItems !== undefined) out += `.min(${s.minItems})`;
      if (s.maxItems !== undefined) out += `.max(${s.maxItems})`;
      return out;
    }
    case "object":
      return objectExpr(s, { ...opts, coerce: false }, indent);
    default:
      throw new Error(`unsupported type ${type}`);
  }
}

function objectExpr(s: oas31.SchemaObject, opts: ZodOptions, indent: number): string {
  const extra = s.additionalProperties;
  const props = Object.entries(s.properties ?? {});
  const extraExpr = typeof extra === "object" ? zodExpr(extra, opts, indent) : "z.unknown()";
  if (props.length === 0) {
    return extra === false ? "z.strictObject({})" : `z.record(z.string(), ${extraExpr})`;
  }
  return (
    objectFields(props, new Set(s.required ?? []), extra === false ? "strict" : "plain", opts, indent) +
    (extra === true ? ".catchall(z.unknown())" : typeof extra === "object" ? `.catchall(${extraExpr})` : "")
  );
}

/** `z.object({...})` from named fields; used for schemas and for parameter groups. */
export function objectFields(
  props: [string, Schema][],
  required: Set<string>,
  kind: "strict" | "plain",
  opts: ZodOptions,
  indent: number,
  descriptions: Record<string, string | undefined> = {},
): string {
  const pad = "  ".repeat(indent + 1);
  const lines = props.map(([name, schema]) => {
    const d = descriptions[name] ?? (isRef(schema) ? undefined : schema.description);
    let expr = zodExpr(schema, opts, indent + 1);
    const hasDefault = !isRef(schema) && schema.default !== undefined;
    if (!required.has(name) && !hasDefault) expr += ".optional()";
    return `${doc(d, pad)}${pad}${key(name)}: ${expr},\n`;
  });
  return `${kind === "strict" ? "z.strictObject" : "z.object"}({\n${lines.join("")}${"  ".repeat(indent)}})`;
}

/** Names of component schemas a schema refers to, in document order. */
export function refsOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsOf(v, out);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")) out.push(refName(v));
      else refsOf(v, out);
    }
  }
  return out;
}
