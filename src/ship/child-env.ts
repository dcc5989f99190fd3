/**
 * The environment user code starts with: Ship's own, minus the JSC options that
 * tune Ship's runtime (BUN_JSC_*, set in the image), plus `extra`.
 */
export function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("BUN_JSC_")) env[name] = value;
  }
  return { ...env, ...extra };
}
