import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
import { ShipError } from "./errors.ts";

/**
 * zValidator with the one shared hook: a failed check throws `validation_error`
 * (rendered by onError) instead of zod's raw default response.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(target: Target, schema: Schema) {
  return zValidator(target, schema, (result) => {
    if (!result.success) {
      const issues = result.error.issues.map((issue) => ({
        path: issue.path.map(String).join("."),
        message: issue.message,
      }));
      const first = issues[0];
      const message = first ? `invalid ${target}: ${first.path || "(root)"}: ${first.message}` : `invalid ${target}`;
      throw new ShipError("validation_error", message, { details: { issues } });
    }
  });
}
