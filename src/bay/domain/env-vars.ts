/** Bay's side of the environment-variable rule (protocol/env-vars.ts): refused before any runtime starts. */
import { envVarIssues } from "../../protocol/env-vars.ts";
import { BayError } from "../errors.ts";

/** Throws validation_error naming the first bad variable of `env` (the request's field `field`). */
export function assertEnvVars(env: Record<string, string> | undefined, field: string): void {
  const issue = envVarIssues(env)[0];
  if (!issue) return;
  const at = issue.name === undefined ? field : `${field}.${JSON.stringify(issue.name)}`;
  throw new BayError("validation_error", `${at}: ${issue.message}`, { details: { field } });
}
