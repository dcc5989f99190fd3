/**
 * The one validation path: every failed schema check throws a BayError
 * validation_error listing the issues, instead of zod's raw default response.
 */
import type { Env, MiddlewareHandler, ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { BayError } from "../../errors.ts";

export function validationError(target: string, issues: z.core.$ZodIssue[]): BayError {
  const list = issues.slice(0, 20).map((i) => ({ path: [target, ...i.path.map(String)].join("."), message: i.message }));
  const first = list[0];
  return new BayError("validation_error", first ? `${first.path}: ${first.message}` : `invalid ${target}`, { details: { issues: list } });
}

/**
 * Validates one part of the request against a generated schema, synchronously:
 * the schemas have no async refinements, and `safeParseAsync` (what zValidator
 * runs) costs promise turns on every request of the hot paths. Header names are
 * matched case-insensitively, as zValidator does.
 */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  const shape = target === "header" ? (schema as unknown as { shape?: Record<string, unknown> }).shape : undefined;
  const headerKeys = shape ? new Map(Object.keys(shape).map((k) => [k.toLowerCase(), k])) : null;
  return validator(target, (value, c): z.output<T> => {
    let input: unknown = value;
    if (headerKeys) {
      input = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [headerKeys.get(k) ?? k, v]));
    }
    const result = schema.safeParse(input);
    if (!result.success) {
      // Hono reads a body of another type as `{}`: say what is wrong with it rather than which field is missing.
      if (target === "json" && !JSON_TYPE.test(c.req.header("content-type") ?? "")) throw notJson();
      throw validationError(target, result.error.issues);
    }
    return result.data;
  });
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json\b/i;
const notJson = () => new BayError("validation_error", "a request body must be JSON (Content-Type: application/json)");

/**
 * For operations whose JSON body is optional: an empty body is `{}` whatever the
 * Content-Type (generated clients send `application/json` with no body), a
 * non-empty one must be JSON. Then the same schema check and error as `validate`.
 */
export function validateOptionalJson<T extends z.ZodType>(
  schema: T,
): MiddlewareHandler<Env, string, { in: { json: z.input<T> }; out: { json: z.output<T> } }> {
  return async function optionalJsonBody(c, next) {
    const text = await c.req.text();
    let value: unknown = {};
    if (text.trim() !== "") {
      if (!JSON_TYPE.test(c.req.header("content-type") ?? "")) {
        throw notJson();
      }
      try {
        value = JSON.parse(text);
      } catch {
        throw new BayError("validation_error", "Malformed JSON in request body");
      }
    }
    const result = await schema.safeParseAsync(value);
    if (!result.success) throw validationError("json", result.error.issues);
    c.req.addValidatedData("json", result.data as object);
    await next();
  };
}
