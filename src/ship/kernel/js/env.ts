/** A request's environment variables in the JS/TS kernel: set for a cell, put back after it. */
/** The environment a request's variables go to, kept even if a cell replaces process.env. */
const kernelEnv = process.env;

/** Sets a request's variables (strings only; Ship checked them), noting in `before` what each was. */
export function setEnv(vars: unknown, before?: Map<string, string | undefined>): void {
  if (vars === null || typeof vars !== "object") return;
  for (const [name, value] of Object.entries(vars)) {
    if (typeof value !== "string") continue;
    // Own values only: `constructor` or `toString` read through would be "restored" as a function.
    if (before && !before.has(name)) before.set(name, Object.hasOwn(kernelEnv, name) ? kernelEnv[name] : undefined);
    kernelEnv[name] = value;
  }
}

/** Puts back what `setEnv` changed. */
export function restoreEnv(before: Map<string, string | undefined>): void {
  for (const [name, value] of before) {
    if (value === undefined) delete kernelEnv[name];
    else kernelEnv[name] = value;
  }
}
