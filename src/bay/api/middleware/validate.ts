/**
 * The one validation hook: every zValidator failure throws a BayError
 * validation_error listing the issues, instead of zod's raw default response.
 */
import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
import { BayError } from "../../errors.ts";

export function validationError(target: string, issues: z.core.$ZodIssue[]): BayError {
  const list = issues.slice(0, 20).map((i) => ({ path: [target, ...i.path.map(String)].join("."), message: i.message }));
  const first = list[0];
  return new BayError("validation_error", first ? `${first.path}: ${first.message}` : `invalid ${target}`, { details: { issues: list } });
}

/** zValidator with Bay's hook. */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return zValidator(target, schema, (result) => {
    if (!result.success) throw validationError(target, result.error.issues);
  });
}
