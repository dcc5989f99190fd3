/** Bay's side of the environment-variable rule (protocol/env-vars.ts): refused before any runtime starts. */
import { ENV_LIMITS, type EnvLimits, envVarIssues } from "../../protocol/env-vars.ts";
import { BayError } from "../errors.ts";

/**
 * What one of two sets Bay merges into what a process gets (an E2B sandbox's own and a
 * call's) may hold: half each, so that the merge always fits ENV_LIMITS.
 */
export const MERGED_SET_LIMITS: EnvLimits = { vars: ENV_LIMITS.vars / 2, bytes: ENV_LIMITS.bytes / 2 };

/** Throws validation_error naming the first bad variable of `env` (the request's field `field`). */
export function assertEnvVars(env: Record<string, string> | undefined, field: string, limits: EnvLimits = ENV_LIMITS): void {
  const issue = envVarIssues(env, limits)[0];
  if (!issue) return;
  const at = issue.name === undefined ? field : `${field}.${JSON.stringify(issue.name)}`;
  throw new BayError("validation_error", `${at}: ${issue.message}`, { details: { field } });
}
