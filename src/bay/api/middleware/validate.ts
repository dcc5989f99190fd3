/**
 * The one validation path: every failed schema check throws a BayError
 * validation_error listing the issues, instead of zod's raw default response.
 */
import type { Context, Env, MiddlewareHandler, ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { jsonShapeRefusal } from "../../../protocol/json-shape.ts";
import { BayError } from "../../errors.ts";

export function validationError(target: string, issues: z.core.$ZodIssue[]): BayError {
  const list = issues.slice(0, 20).map((i) => ({ path: [target, ...i.path.map(String)].join("."), message: i.message }));
  const first = list[0];
  return new BayError("validation_error", first ? `${first.path}: ${first.message}` : `invalid ${target}`, { details: { issues: list } });
}

/**
 * Validates one part of the request against a generated schema, synchronously:
 * the schemas have no async refinements, and `safeParseAsync` (what zValidator
 * runs) costs promise turns on every request of the hot paths. The path, query
 * and headers are read as Hono's validator reads them, without a promise of its
 * own (Hono's is async for the body's sake). Header names are matched
 * case-insensitively, as zValidator does. A JSON body is read by jsonBody.
 */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  const shape = target === "header" ? (schema as unknown as { shape?: Record<string, unknown> }).shape : undefined;
  const headerKeys = shape ? new Map(Object.keys(shape).map((k) => [k.toLowerCase(), k])) : null;
  const check = (value: unknown): z.output<T> => {
    let input: unknown = value;
    if (headerKeys) {
      input = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [headerKeys.get(k) ?? k, v]));
    }
    const result = schema.safeParse(input);
    if (!result.success) throw validationError(target, result.error.issues);
    return result.data;
  };
  const typed = validator(target, check);
  // Not Hono's reading of it, whose one answer for an empty, cut-short or broken body is "Malformed JSON".
  if (target === "json") return jsonBody(schema, false) as unknown as typeof typed;
  const read = PARTS[target];
  if (!read) return typed;
  const checkedNow: MiddlewareHandler = function bayValidate(c, next) {
    c.req.addValidatedData(target, check(read(c)) as object);
    return next();
  };
  return checkedNow as unknown as typeof typed;
}

/** The parts of a request at hand when its route runs, each as Hono's validator reads it. */
const PARTS: Partial<Record<keyof ValidationTargets, (c: Context) => unknown>> = {
  param: (c) => c.req.param(),
  query: (c) => Object.fromEntries(Object.entries(c.req.queries()).map(([k, v]) => (v.length === 1 ? [k, v[0]] : [k, v]))),
  header: (c) => c.req.header(),
};

/**
 * For operations whose JSON body is optional: an empty body is `{}` whatever the
 * Content-Type (generated clients send `application/json` with no body), a
 * non-empty one must be JSON. Then the same schema check and error as `validate`.
 */
export function validateOptionalJson<T extends z.ZodType>(
  schema: T,
): MiddlewareHandler<Env, string, { in: { json: z.input<T> }; out: { json: z.output<T> } }> {
  return jsonBody(schema, true);
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json\b/i;
const decoder = new TextDecoder();
const notJson = () => new BayError("validation_error", "a request body must be JSON (Content-Type: application/json)");
const emptyBody = () =>
  new BayError("validation_error", "the request body is empty: a JSON object is expected (Content-Type: application/json)");

/** The parser's reason, without its prefix; a body cut short says so. */
function malformedJson(err: unknown): BayError {
  const reason = String(err instanceof Error ? err.message : err)
    .replace(/^JSON Parse error:\s*/i, "")
    .slice(0, 200);
  const short = /\bEOF\b|Unterminated/i.test(reason) ? ": it ends before the JSON value does" : "";
  return new BayError("validation_error", `the request body is not valid JSON (${reason}${short})`);
}

/**
 * The one rule for a JSON request body, on every route that takes one (`validate("json")`
 * and `validateOptionalJson`), read within the body limit (body-limit.ts) before it:
 * - an empty (or blank) body is `{}` where the body is optional; where it is required,
 *   it is refused as empty when it claims to be JSON;
 * - a body that claims to be JSON must parse, else it is refused with the parser's reason;
 *   one too many values or too deep to parse cheaply is refused before the parser sees it
 *   (json-shape.ts, review s87);
 * - a body of another type is read as `{}` (as Hono does) where the body is required,
 *   and refused where it is optional; when the schema check then fails, the answer says
 *   what is wrong with the body (empty, or not JSON) rather than which field is missing.
 * Then the schema check, whose failure lists the issues (validationError).
 */
function jsonBody<T extends z.ZodType>(
  schema: T,
  optional: boolean,
): MiddlewareHandler<Env, string, { in: { json: z.input<T> }; out: { json: z.output<T> } }> {
  return async function readJsonBody(c, next) {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const text = decoder.decode(bytes);
    const typed = JSON_TYPE.test(c.req.header("content-type") ?? "");
    const empty = text.trim() === "";
    let value: unknown = {};
    if (!empty && typed) {
      const refusal = jsonShapeRefusal(bytes);
      if (refusal)
        throw new BayError("validation_error", `${refusal}: not parsed`, { details: { issues: [{ path: "json", message: refusal }] } });
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw malformedJson(err);
      }
    } else if (!empty && optional) throw notJson();
    else if (empty && typed && !optional) throw emptyBody();
    const result = optional ? await schema.safeParseAsync(value) : schema.safeParse(value);
    if (!result.success) {
      if (!typed && !optional) throw empty ? emptyBody() : notJson();
      throw validationError("json", result.error.issues);
    }
    c.req.addValidatedData("json", result.data as object);
    await next();
  };
}
