/** How a JavaScript/TypeScript kernel was started (`ship js-kernel [--language …]`), and the text of an interrupted cell. */

/** How the kernel was started. */
export interface JsKernelOptions {
  language: "javascript" | "typescript";
  /** Cap on one cell's output (SHIP_MAX_OUTPUT_BYTES). */
  maxOutputBytes: number;
}

/** The error text of an interrupted cell. */
export const INTERRUPTED_ERROR = "Interrupted: execution was stopped by SIGINT (timeout or interrupt); the context's state is kept";

/** Reads `--language` and SHIP_MAX_OUTPUT_BYTES. */
export function parseKernelArgs(argv: string[], env: Record<string, string | undefined> = process.env): JsKernelOptions {
  let language: JsKernelOptions["language"] = "javascript";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = arg === "--language" ? argv[++i] : arg?.startsWith("--language=") ? arg.slice("--language=".length) : undefined;
    if (value === undefined) continue;
    if (value !== "javascript" && value !== "typescript") throw new Error(`--language must be javascript or typescript, got ${value}`);
    language = value;
  }
  const raw = env.SHIP_MAX_OUTPUT_BYTES;
  const maxOutputBytes = raw ? Number(raw) : 1024 * 1024;
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes <= 0)
    throw new Error(`SHIP_MAX_OUTPUT_BYTES must be a positive integer, got ${raw}`);
  return { language, maxOutputBytes };
}
