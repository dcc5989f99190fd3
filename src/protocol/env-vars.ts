/**
 * Environment variables a request hands to user code (a command's, a run's, a
 * terminal's): one rule for Bay, which refuses bad ones before any runtime
 * starts, and for Ship, where a bad one would otherwise fail in execve or in a
 * kernel.
 */
import type { z } from "zod";

/** How many variables, and how many bytes of names and values (UTF-8), one set may hold. */
export interface EnvLimits {
  vars: number;
  bytes: number;
}

/**
 * What may reach one process. The bytes keep every `name=value` well under Linux's
 * 128 KiB for one string (E2BIG), and a set small enough to send with every call.
 */
export const ENV_LIMITS: EnvLimits = { vars: 1024, bytes: 64 * 1024 };

/** Half of a UTF-16 surrogate pair alone: no UTF-8 for execve, and Python's os.environ refuses it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with `env`: `name` says which variable (none: the set as a whole). */
export interface EnvVarIssue {
  name?: string;
  message: string;
}

/** Every bad name or value of `env` (empty when it is fine). */
export function envVarIssues(env: Record<string, string> | undefined, limits: EnvLimits = ENV_LIMITS): EnvVarIssue[] {
  if (!env) return [];
  const names = Object.keys(env);
  if (names.length > limits.vars) return [{ message: `at most ${limits.vars} variables` }];
  let bytes = 0;
  for (const name of names) bytes += Buffer.byteLength(name) + Buffer.byteLength(env[name]!);
  if (bytes > limits.bytes) return [{ message: `at most ${limits.bytes} bytes of names and values` }];
  const issues: EnvVarIssue[] = [];
  for (const name of names) {
    if (name === "" || name.includes("\0") || name.includes("=")) {
      issues.push({ name, message: "a name must not be empty or contain NUL or '='" });
    } else if (LONE_SURROGATE.test(name)) {
      issues.push({ name, message: "a name must be valid Unicode (no lone surrogate)" });
    } else if (name === "__proto__") {
      // JavaScript's process.env cannot hold it: the JS and TS kernels would drop it without a word.
      issues.push({ name, message: "a name JavaScript cannot hold" });
    }
    const value = env[name]!;
    if (value.includes("\0")) issues.push({ name, message: "must not contain a NUL byte" });
    else if (LONE_SURROGATE.test(value)) issues.push({ name, message: "must be valid Unicode (no lone surrogate)" });
  }
  return issues;
}

/** Adds `envVarIssues(env)` to a zod refinement, at `path`. */
export function checkEnvVars(env: Record<string, string> | undefined, path: string, ctx: z.RefinementCtx): void {
  for (const issue of envVarIssues(env)) {
    ctx.addIssue({ code: "custom", path: issue.name === undefined ? [path] : [path, issue.name], message: issue.message });
  }
}

/** `schema` (a run's body) with its `env` and `base_env` checked as above. */
export function withCheckedEnv<T extends z.ZodType<{ env?: Record<string, string>; base_env?: Record<string, string> }>>(schema: T) {
  return schema.superRefine((body, ctx) => {
    checkEnvVars(body.env, "env", ctx);
    checkEnvVars(body.base_env, "base_env", ctx);
  });
}
