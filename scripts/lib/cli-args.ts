/**
 * `--name value` / `--name=value` / `--flag` command-line options for the
 * scripts, checked against the names a script declares (an unknown or
 * malformed option stops the script with its usage).
 */
export interface OptionSpec {
  /** Option name without the leading dashes. */
  name: string;
  kind: "int" | "string" | "flag";
  help: string;
}

export type ParsedOptions = Map<string, string | true>;

/** Parses `argv` (without the runtime and script) or exits 2 with `usage`. */
export function parseOptions(argv: string[], specs: OptionSpec[], usage: string): ParsedOptions {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: ParsedOptions = new Map();
  const fail = (msg: string): never => {
    process.stderr.write(
      `${msg}\n\n${usage}\n${specs.map((s) => `  --${s.name}${s.kind === "flag" ? "" : " N"}  ${s.help}`).join("\n")}\n`,
    );
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") fail("");
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg);
    if (!m) fail(`unexpected argument: ${arg}`);
    const spec = byName.get(m![1]!);
    if (!spec) fail(`unknown option: --${m![1]}`);
    if (spec!.kind === "flag") {
      out.set(spec!.name, true);
      continue;
    }
    const value = m![2] ?? argv[++i];
    if (value === undefined) fail(`--${spec!.name} needs a value`);
    if (spec!.kind === "int" && !/^\d+$/.test(value!)) fail(`--${spec!.name} must be a non-negative integer, got "${value}"`);
    out.set(spec!.name, value!);
  }
  return out;
}

/** The integer value of an option, or `fallback`. */
export const intOption = (opts: ParsedOptions, name: string, fallback: number): number => {
  const v = opts.get(name);
  return typeof v === "string" ? Number(v) : fallback;
};

/** The string value of an option, or `fallback`. */
export const stringOption = (opts: ParsedOptions, name: string, fallback: string): string => {
  const v = opts.get(name);
  return typeof v === "string" ? v : fallback;
};
