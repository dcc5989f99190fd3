/**
 * The part of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that Bay's spec
 * uses, as a validator. A keyword it does not know stops the fuzzer instead of
 * being ignored: an unchecked constraint would hide findings.
 */
export interface Schema {
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  const?: unknown;
  oneOf?: Schema[];
  /** With `oneOf`: the property whose `const` picks the branch (the mapping itself is not needed once refs are inlined). */
  discriminator?: { propertyName: string; mapping?: Record<string, string> };
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
  default?: unknown;
  description?: string;
}

const ANNOTATIONS = new Set(["description", "default", "title", "example", "examples"]);
const CHECKED = new Set([
  "type",
  "enum",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "const",
  "oneOf",
  "discriminator",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "pattern",
  "format",
]);
const FORMATS = new Set(["date-time", "binary"]);
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Throws when `schema` (recursively) uses a keyword or format this validator
 * does not check. A key whose value is null constrains nothing (it is what an
 * unquoted comma in a YAML flow mapping leaves behind); it is passed to `warn`.
 */
export function assertSupported(schema: Schema, where: string, warn: (msg: string) => void = () => {}): void {
  for (const [k, v] of Object.entries(schema)) {
    if (CHECKED.has(k) || ANNOTATIONS.has(k)) continue;
    if (v === null) warn(`${where}: key ${JSON.stringify(k)} with no value (an unquoted comma in the YAML?)`);
    else throw new Error(`${where}: JSON Schema keyword "${k}" is not supported by the fuzzer`);
  }
  if (schema.format && !FORMATS.has(schema.format)) throw new Error(`${where}: format "${schema.format}" is not supported`);
  for (const [name, sub] of Object.entries(schema.properties ?? {})) assertSupported(sub, `${where}.${name}`, warn);
  if (typeof schema.additionalProperties === "object") assertSupported(schema.additionalProperties, `${where}.*`, warn);
  if (schema.items) assertSupported(schema.items, `${where}[]`, warn);
  for (const [i, sub] of (schema.oneOf ?? []).entries()) assertSupported(sub, `${where}.oneOf[${i}]`, warn);
  if (schema.discriminator && !schema.oneOf) throw new Error(`${where}: discriminator without oneOf`);
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** String length as JSON Schema counts it: in code points. */
const codePoints = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** The violations of `schema` by `value`, each prefixed with its JSON path; empty when valid. */
export function validate(schema: Schema, value: unknown, path = "$"): string[] {
  const errors: string[] = [];
  if (schema.oneOf) errors.push(...validateOneOf(schema, value, path));
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === "integer" && types.includes("number"))) {
      return [`${path}: expected ${types.join("|")}, got ${t}`];
    }
  }
  if ("const" in schema && schema.const !== value) errors.push(`${path}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.some((e) => e === value))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "string") {
    const n = codePoints(value);
    if (schema.minLength !== undefined && n < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && n > schema.maxLength) errors.push(`${path}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(value))
      errors.push(`${path}: does not match ${schema.pattern}`);
    if (schema.format === "date-time" && !DATE_TIME.test(value)) errors.push(`${path}: not an RFC 3339 date-time`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: above ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.minItems !== undefined && value.length < schema.minItems)
    errors.push(`${path}: fewer than ${schema.minItems} items`);
  if (Array.isArray(value) && schema.maxItems !== undefined && value.length > schema.maxItems)
    errors.push(`${path}: more than ${schema.maxItems} items`);
  if (Array.isArray(value) && schema.items) {
    for (const [i, v] of value.entries()) errors.push(...validate(schema.items, v, `${path}[${i}]`));
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) errors.push(`${path}: missing required "${r}"`);
    for (const [k, v] of Object.entries(obj)) {
      const sub = schema.properties?.[k];
      if (sub) errors.push(...validate(sub, v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property "${k}"`);
      else if (typeof schema.additionalProperties === "object") errors.push(...validate(schema.additionalProperties, v, `${path}.${k}`));
    }
  }
  return errors;
}

/**
 * `oneOf`: exactly one branch must accept the value. With a discriminator, the
 * branch is the one whose discriminating property has the value's `const`, so
 * the errors name what is wrong inside that branch.
 */
function validateOneOf(schema: Schema, value: unknown, path: string): string[] {
  const branches = schema.oneOf!;
  const prop = schema.discriminator?.propertyName;
  if (prop !== undefined) {
    const tag = (value as Record<string, unknown> | null)?.[prop];
    const branch = branches.find((b) => b.properties?.[prop]?.const === tag);
    if (!branch) return [`${path}.${prop}: ${JSON.stringify(tag)} names no variant`];
    return validate(branch, value, path);
  }
  const results = branches.map((b) => validate(b, value, path));
  const passing = results.filter((r) => r.length === 0).length;
  if (passing === 1) return [];
  if (passing > 1) return [`${path}: matches ${passing} branches of oneOf, not exactly one`];
  const closest = results.reduce((a, b) => (b.length < a.length ? b : a));
  return [`${path}: matches no branch of oneOf`, ...closest.slice(0, 2)];
}
