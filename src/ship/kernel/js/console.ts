/**
 * Console capture for the JS kernel: `console.*`, `process.stdout.write` and
 * `process.stderr.write` become calls to `write(stream, text)` in the order they happen,
 * formatted like Bun's own console (Bun.inspect for values, printf-style `%s %d %i %f
 * %j %o %O %c` when the first argument is a string).
 */
import { kernelQueueMicrotask } from "./intrinsics.ts";

export type StreamName = "stdout" | "stderr";
export type StreamWriter = (name: StreamName, text: string) => void;

function inspect(value: unknown): string {
  return Bun.inspect(value);
}

/** Formats console arguments into one line of text (without the newline). */
export function formatArgs(args: unknown[]): string {
  if (args.length === 0) return "";
  const parts: string[] = [];
  let rest = args;
  const first = args[0];
  if (typeof first === "string" && first.includes("%")) {
    let index = 1;
    const formatted = first.replace(/%[sdifjoOc%]/g, (spec) => {
      if (spec === "%%") return "%";
      if (index >= args.length) return spec;
      const arg = args[index++];
      switch (spec) {
        case "%s":
          return typeof arg === "string" ? arg : typeof arg === "object" && arg !== null ? inspect(arg) : String(arg);
        case "%d":
          return typeof arg === "bigint" ? `${arg}n` : String(Number(arg));
        case "%i":
          return typeof arg === "bigint" ? `${arg}n` : String(Number.parseInt(String(arg), 10));
        case "%f":
          return String(Number.parseFloat(String(arg)));
        case "%j":
          try {
            return JSON.stringify(arg) ?? "undefined";
          } catch {
            return "[Circular]";
          }
        case "%c":
          return "";
        default:
          return inspect(arg);
      }
    });
    parts.push(formatted);
    rest = args.slice(index);
  } else {
    parts.push(typeof first === "string" ? first : inspect(first));
    rest = args.slice(1);
  }
  for (const arg of rest) parts.push(typeof arg === "string" ? arg : inspect(arg));
  return parts.join(" ");
}

function chunkText(chunk: unknown): string {
  if (typeof chunk === "string") return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("utf8");
  if (chunk instanceof ArrayBuffer) return Buffer.from(chunk).toString("utf8");
  return String(chunk);
}

/** Replaces the global console's methods and process.stdout/stderr.write with `write`. */
export function installConsole(write: StreamWriter): void {
  const c = console as unknown as Record<string, unknown>;
  let indent = "";
  const counts = new Map<string, number>();
  const timers = new Map<string, number>();
  const line = (name: StreamName, text: string) => {
    const indented = indent ? text.replace(/^/gm, indent) : text;
    write(name, `${indented}\n`);
  };
  const out =
    (name: StreamName) =>
    (...args: unknown[]) =>
      line(name, formatArgs(args));
  c.log = out("stdout");
  c.info = out("stdout");
  c.debug = out("stdout");
  c.error = out("stderr");
  c.warn = out("stderr");
  c.trace = (...args: unknown[]) => {
    const stack = (new Error().stack ?? "").split("\n").slice(2).join("\n");
    line("stderr", `Trace${args.length ? `: ${formatArgs(args)}` : ""}\n${stack}`);
  };
  c.dir = (value: unknown, options?: Record<string, unknown>) => line("stdout", Bun.inspect(value, options ?? {}));
  c.dirxml = out("stdout");
  c.table = (data: unknown, properties?: string[]) => {
    const table =
      typeof data === "object" && data !== null
        ? properties
          ? Bun.inspect.table(data, properties, { colors: false })
          : Bun.inspect.table(data, { colors: false })
        : formatArgs([data]);
    line("stdout", table.replace(/\n$/, ""));
  };
  c.assert = (condition: unknown, ...args: unknown[]) => {
    if (!condition) line("stderr", `Assertion failed${args.length ? `: ${formatArgs(args)}` : ""}`);
  };
  c.count = (label = "default") => {
    const n = (counts.get(label) ?? 0) + 1;
    counts.set(label, n);
    line("stdout", `${label}: ${n}`);
  };
  c.countReset = (label = "default") => void counts.delete(label);
  c.time = (label = "default") => void timers.set(label, performance.now());
  const elapsed = (label: string) => {
    const start = timers.get(label);
    return start === undefined ? null : `${label}: ${(performance.now() - start).toFixed(3)}ms`;
  };
  c.timeLog = (label = "default", ...args: unknown[]) => {
    const text = elapsed(label);
    if (text) line("stdout", args.length ? `${text} ${formatArgs(args)}` : text);
  };
  c.timeEnd = (label = "default") => {
    const text = elapsed(label);
    timers.delete(label);
    if (text) line("stdout", text);
  };
  c.group = (...args: unknown[]) => {
    if (args.length) line("stdout", formatArgs(args));
    indent += "  ";
  };
  c.groupCollapsed = c.group;
  c.groupEnd = () => {
    indent = indent.slice(2);
  };

  for (const [stream, name] of [
    [process.stdout, "stdout"],
    [process.stderr, "stderr"],
  ] as const) {
    (stream as unknown as { write: unknown }).write = (chunk: unknown, encoding?: unknown, callback?: unknown) => {
      write(name, chunkText(chunk));
      const done = typeof encoding === "function" ? encoding : callback;
      if (typeof done === "function") kernelQueueMicrotask(() => (done as () => void)());
      return true;
    };
  }
}
