/**
 * Turns the JSON-schema subset used in openapi/bay.v1.yaml into zod v4 source text.
 * Every keyword is either translated, a pure annotation, or refused: an unknown or
 * untranslated keyword (allOf, multipleOf, a `format` other than date-time/binary,
 * a string keyword on a number, …) throws with its location, so the spec cannot
 * silently outgrow the generator.
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

/** Keywords that document and never validate: accepted anywhere, translated into nothing. */
const ANNOTATIONS = new Set(["description", "title", "example", "examples"]);
/** Keywords that apply whatever the type. */
const GENERAL = new Set(["type", "enum", "const", "default"]);
/** Keywords each type translates. */
const BY_TYPE: Record<string, ReadonlySet<string>> = {
  string: new Set(["minLength", "maxLength", "pattern", "format"]),
  integer: new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
  number: new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
  boolean: new Set(),
  null: new Set(),
  array: new Set(["items", "minItems", "maxItems"]),
  object: new Set(["properties", "required", "additionalProperties"]),
};
/** The string formats with a zod translation; any other format throws. */
const FORMATS = new Set(["date-time", "binary"]);
/** A $ref may carry only these siblings (OpenAPI 3.1 reference object). */
const REF_SIBLINGS = new Set(["$ref", "description", "summary"]);

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
  /** Resolves a $ref for checks that need the target (coercion, discriminators). */
  resolve?: (name: string) => oas31.SchemaObject | undefined;
  /** Where the schema sits, for error messages (`components.schemas.Sandbox.properties.id`). */
  at?: string;
}

const where = (opts: ZodOptions) => opts.at ?? "schema";
const fail = (opts: ZodOptions, message: string): never => {
  throw new Error(`${where(opts)}: ${message}`);
};

/** Throws on every keyword of `s` that this generator does not translate for its type. */
function checkKeywords(s: oas31.SchemaObject, types: string[], opts: ZodOptions): void {
  const combinator = s.oneOf !== undefined;
  for (const k of Object.keys(s)) {
    if (ANNOTATIONS.has(k)) continue;
    if (combinator) {
      if (k === "oneOf" || k === "discriminator") continue;
      fail(opts, `keyword "${k}" next to oneOf is not supported by scripts/gen/zod.ts`);
    }
    if (GENERAL.has(k)) continue;
    if (k === "discriminator") fail(opts, `keyword "discriminator" without oneOf`);
    const owners = types.filter((t) => BY_TYPE[t]?.has(k));
    if (owners.length > 0) continue;
    const known = Object.values(BY_TYPE).some((set) => set.has(k));
    if (known && s.enum === undefined && s.const === undefined) {
      fail(opts, `keyword "${k}" does not apply to type ${lit(s.type ?? "(none)")}`);
    }
    if (known) fail(opts, `keyword "${k}" next to enum/const is not supported by scripts/gen/zod.ts`);
    fail(opts, `keyword "${k}" is not supported by scripts/gen/zod.ts`);
  }
  if (s.format !== undefined && !FORMATS.has(s.format)) fail(opts, `format "${s.format}" is not supported by scripts/gen/zod.ts`);
  if (s.format === "binary" && (s.minLength !== undefined || s.maxLength !== undefined || s.pattern !== undefined)) {
    fail(opts, `format "binary" cannot take string length or pattern keywords`);
  }
  for (const r of s.required ?? []) {
    if (!(r in (s.properties ?? {}))) fail(opts, `required property "${r}" is not in properties`);
  }
}

/** Zod source for one schema. `indent` is the current indentation level (2 spaces). */
export function zodExpr(s: Schema, opts: ZodOptions = {}, indent = 0): string {
  if (isRef(s)) {
    for (const k of Object.keys(s)) if (!REF_SIBLINGS.has(k)) fail(opts, `keyword "${k}" next to $ref is not supported`);
    const name = refName(s.$ref);
    const target = opts.resolve?.(name);
    if (opts.coerce && target && target.type !== "string")
      throw new Error(`$ref ${name} in a string-valued parameter must be a string schema`);
    return `z${name}`;
  }
  if (typeof s !== "object" || s === null || Array.isArray(s)) fail(opts, `a schema must be an object, got ${lit(s)}`);
  const all = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  checkKeywords(s, all, opts);
  const nullable = all.includes("null");
  const types = all.filter((t) => t !== "null");
  let out: string;
  if (s.oneOf) {
    out = s.discriminator
      ? discriminated(s, opts, indent)
      : `z.union([${s.oneOf.map((x, i) => zodExpr(x, at(opts, `oneOf[${i}]`), indent)).join(", ")}])`;
  } else if (s.const !== undefined) {
    out = `z.literal(${lit(s.const)})`;
  } else if (s.enum) {
    const values = s.enum.filter((v) => v !== null);
    if (!values.every((v) => typeof v === "string")) fail(opts, "only string enums are supported");
    out = values.length === 1 ? `z.literal(${lit(values[0])})` : `z.enum([${values.map(lit).join(", ")}])`;
  } else if (types.length !== 1) {
    fail(opts, `unsupported type ${lit(s.type)}`);
    out = "";
  } else {
    out = typed(types[0]!, s, opts, indent);
  }
  if (nullable) out += ".nullable()";
  if (s.default !== undefined) out += `.default(${lit(s.default)})`;
  return out;
}

const at = (opts: ZodOptions, step: string): ZodOptions => ({ ...opts, at: `${where(opts)}.${step}` });

/** `oneOf` + `discriminator`: every variant a $ref whose property is a `const` equal to its mapping key. */
function discriminated(s: oas31.SchemaObject, opts: ZodOptions, indent: number): string {
  const d = s.discriminator!;
  for (const k of Object.keys(d)) if (k !== "propertyName" && k !== "mapping") fail(opts, `discriminator.${k} is not supported`);
  if (!opts.resolve) fail(opts, "a discriminator needs the component schemas to check its variants");
  const refs = s.oneOf!.map((v, i) => (isRef(v) ? v.$ref : fail(at(opts, `oneOf[${i}]`), "a discriminated variant must be a $ref")));
  const mapping = Object.entries(d.mapping ?? {});
  const mapped = new Set(mapping.map(([, ref]) => ref));
  if (mapping.length !== refs.length || refs.some((r) => !mapped.has(r))) {
    fail(opts, "discriminator.mapping must name every oneOf variant exactly once");
  }
  for (const [value, ref] of mapping) {
    const target = opts.resolve!(refName(ref));
    const prop = target?.properties?.[d.propertyName] as oas31.SchemaObject | undefined;
    if (!target?.required?.includes(d.propertyName) || prop?.const !== value) {
      fail(opts, `variant ${ref} must require "${d.propertyName}" with const ${lit(value)}`);
    }
  }
  return `z.discriminatedUnion(${lit(d.propertyName)}, [${refs.map((r, i) => zodExpr({ $ref: r }, at(opts, `oneOf[${i}]`), indent)).join(", ")}])`;
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
      // A query, path or header value is a string: only plain decimal digits are a number
      // (z.coerce.number would take "" as 0, "0x10" as 16, " 1" and "1e3" too).
      const decimal = type === "integer" ? "/^-?[0-9]{1,16}$/" : "/^-?[0-9]{1,16}(?:\\.[0-9]{1,16})?$/";
      let out = opts.coerce ? `z.string().regex(${decimal}, "must be a decimal number").transform(Number).pipe(z.number()` : "z.number()";
      if (type === "integer") out += ".int()";
      if (s.minimum !== undefined) out += `.min(${s.minimum})`;
      if (s.maximum !== undefined) out += `.max(${s.maximum})`;
      if (s.exclusiveMinimum !== undefined) {
        if (typeof s.exclusiveMinimum !== "number") fail(opts, "exclusiveMinimum must be a number (OpenAPI 3.1)");
        out += `.gt(${s.exclusiveMinimum})`;
      }
      if (s.exclusiveMaximum !== undefined) {
        if (typeof s.exclusiveMaximum !== "number") fail(opts, "exclusiveMaximum must be a number (OpenAPI 3.1)");
        out += `.lt(${s.exclusiveMaximum})`;
      }
      return opts.coerce ? `${out})` : out;
    }
    case "boolean":
      return opts.coerce ? "z.stringbool()" : "z.boolean()";
    case "array": {
      if (!s.items) fail(opts, "array without items");
      let out = `z.array(${zodExpr(s.items!, { ...at(opts, "items"), coerce: false }, indent)})`;
      if (s.minItems !== undefined) out += `.min(${s.minItems})`;
      if (s.maxItems !== undefined) out += `.max(${s.maxItems})`;
      return out;
    }
    case "object":
      return objectExpr(s, { ...opts, coerce: false }, indent);
    default:
      return fail(opts, `unsupported type ${type}`);
  }
}

function objectExpr(s: oas31.SchemaObject, opts: ZodOptions, indent: number): string {
  const extra = s.additionalProperties;
  const props = Object.entries(s.properties ?? {});
  for (const [name] of props) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(opts, `property name ${lit(name)} is not an identifier`);
  const extraExpr = typeof extra === "object" ? zodExpr(extra, at(opts, "additionalProperties"), indent) : "z.unknown()";
  if (props.length === 0) {
    return extra === false ? "z.strictObject({})" : `z.record(z.string(), ${extraExpr})`;
  }
  return (
    objectFields(props, new Set(s.required ?? []), extra === false ? "strict" : "plain", at(opts, "properties"), indent) +
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
    let expr = zodExpr(schema, at(opts, name), indent + 1);
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
      else if (k === "discriminator")
        continue; // its mapping repeats the oneOf refs
      else refsOf(v, out);
    }
  }
  return out;
}
