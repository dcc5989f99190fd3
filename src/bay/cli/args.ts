/** The CLI's argument parsing and output helpers, shared by every command group. */

/** Where a command writes, and the environment it reads. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Writes `text` as it is, without a newline (when absent, text is written as a line). */
  write?(stream: "out" | "err", text: string): void;
  env: Record<string, string | undefined>;
  /** Calls `gone` once stdout cannot be written any more (its reader went away); answers how to stop watching. */
  outputGone?(gone: () => void): () => void;
}

/** Bad usage: the caller prints the message and the group's usage, exit 2. */
export class UsageError extends Error {}

export interface Parsed {
  positionals: string[];
  flags: Map<string, string | true>;
}

export interface FlagSpec {
  /** Flags that take a value (`--name VALUE` or `--name=VALUE`). */
  values?: readonly string[];
  /** Flags that take none. */
  bools?: readonly string[];
}

/**
 * Parses `argv` against the flags a command knows. `--` ends the options: what
 * follows is positional even when it starts with `-` (a shell command, say).
 */
export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const values = new Set(spec.values ?? []);
  const bools = new Set(["help", ...(spec.bools ?? [])]);
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      flags.set("help", true);
      continue;
    }
    if (!arg.startsWith("--") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (bools.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (values.has(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || value === "" || (eq === -1 && value.startsWith("--"))) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    } else throw new UsageError(`unknown option ${arg}`);
  }
  return { positionals, flags };
}

/** Refuses flags and extra positionals a command does not take. */
export function allowOnly(p: Parsed, allowed: readonly string[], maxPositionals: number): void {
  for (const f of p.flags.keys()) if (f !== "help" && !allowed.includes(f)) throw new UsageError(`--${f} is not an option of this command`);
  if (p.positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${p.positionals[maxPositionals]}`);
}

export const flag = (p: Parsed, name: string): string | undefined => {
  const v = p.flags.get(name);
  return typeof v === "string" ? v : undefined;
};

/** Left-aligned columns, two spaces apart. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
}

/** Database URLs may carry credentials. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@").replace(/([?&](authToken|token)=)[^&]*/gi, "$1***");
}

/** `1.2s` / `850ms`. */
export const elapsed = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms)}ms`);
