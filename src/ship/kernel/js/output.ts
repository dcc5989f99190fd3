/**
 * What one cell produces, with the caps of SHIP_MAX_OUTPUT_BYTES: stream text (in order,
 * at most `cap` UTF-8 bytes), rich output (at most `cap` characters of MIME data, like
 * the Python driver's Budget), the rich-output hook and error text.
 */
import { thenOf } from "./promises.ts";
import type { StreamName } from "./console.ts";

/**
 * The rich-output hook, the one Deno's Jupyter kernel uses (`Deno.jupyter.$display`): an
 * object with a `[Symbol.for("Jupyter.display")]()` method returning a MIME bundle
 * (`{"text/html": "…", "image/png": base64 or bytes}`), or a promise of one.
 */
export const DISPLAY_HOOK = Symbol.for("Jupyter.display");

/** The longest prefix of `text` that fits in `bytes` UTF-8 bytes. */
export function cutToBytes(text: string, bytes: number): string {
  if (bytes <= 0) return "";
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= bytes) return text;
  // Back up to a character boundary: never split a multi-byte sequence.
  let end = bytes;
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString("utf8");
}

/** Stream text of one cell, capped; each accepted piece is also emitted as it comes. */
export class CellOutput {
  private readonly parts: string[] = [];
  private bytes = 0;
  /** True once text was dropped for the cap. */
  truncated = false;

  constructor(
    private readonly cap: number,
    private readonly emit: (name: StreamName, text: string) => void,
  ) {}

  /** Bytes still allowed. */
  get room(): number {
    return Math.max(this.cap - this.bytes, 0);
  }

  write(name: StreamName, text: string): void {
    if (!text) return;
    if (this.truncated) return;
    const size = Buffer.byteLength(text);
    if (size > this.room) {
      text = cutToBytes(text, this.room);
      this.truncated = true;
    }
    if (!text) return;
    this.parts.push(text);
    this.bytes += Buffer.byteLength(text);
    this.emit(name, text);
  }

  /** Appends the last expression's text/plain to the output, as the Python driver does. */
  appendResult(text: string): void {
    const joiner = this.parts.length && !this.parts.at(-1)!.endsWith("\n") ? "\n" : "";
    const room = this.room - joiner.length - 1;
    if (Buffer.byteLength(text) > room) {
      this.truncated = true;
      if (room <= 0) return;
      text = cutToBytes(text, room);
    }
    const out = `${joiner}${text}\n`;
    this.parts.push(out);
    this.bytes += Buffer.byteLength(out);
  }

  text(): string {
    return this.parts.join("");
  }
}

/** What is left of the `cap` characters allowed for one reply's rich data. */
export class DataBudget {
  private left: number;
  truncated = false;

  constructor(cap: number) {
    this.left = cap;
  }

  /** The part of `bundle` that fits: text can be cut, an image or JSON cut short is garbage, so it is dropped. */
  take(bundle: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [mime, value] of Object.entries(bundle)) {
      if (value.length <= this.left) {
        out[mime] = value;
        this.left -= value.length;
        continue;
      }
      this.truncated = true;
      if (mime.startsWith("text/") && this.left > 0) {
        out[mime] = value.slice(0, this.left);
        this.left = 0;
      }
    }
    return out;
  }
}

function mimeValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString("base64");
  return JSON.stringify(value) ?? String(value);
}

/** A MIME bundle as the protocol carries it: every value a string. */
export function normalizeBundle(bundle: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof bundle !== "object" || bundle === null) return { "text/plain": inspectValue(bundle) };
  for (const [mime, value] of Object.entries(bundle)) {
    if (value !== undefined && value !== null) out[mime] = mimeValue(value);
  }
  return out;
}

/** A value as the REPL shows it. */
export function inspectValue(value: unknown): string {
  return Bun.inspect(value);
}

/**
 * The MIME bundle of a value: its hook's bundle as given (a hook wanting text in the
 * output includes text/plain), or just text/plain. A promise when the hook is async.
 */
export function bundleOf(value: unknown): Record<string, string> | Promise<Record<string, string>> {
  const hook =
    typeof value === "object" || typeof value === "function" ? (value as Record<symbol, unknown> | null)?.[DISPLAY_HOOK] : undefined;
  if (typeof hook !== "function") return { "text/plain": inspectValue(value) };
  const bundle = hook.call(value);
  return bundle instanceof Promise ? thenOf(bundle, normalizeBundle) : normalizeBundle(bundle);
}

/** At most `limit` characters of `text`: its head and tail around a marker. */
export function clip(text: string, limit: number): { text: string; cut: boolean } {
  if (text.length <= limit) return { text, cut: false };
  const half = Math.max(Math.floor(limit / 2), 0);
  const note = `\n... [${text.length - 2 * half} characters truncated] ...\n`;
  return { text: text.slice(0, half) + note + text.slice(text.length - half), cut: true };
}

/** Frames from here down are the kernel's own, never the user's. */
const KERNEL_FRAME = /\bat (?:runInThisContext|drainMicrotasks)\b|bay-kernel|\/\$bunfs\/|\/kernel\/js\//;

/**
 * The text of an error as the cell's `error`: name, message and the user's stack frames
 * (`isWrapperFrame` drops the frames of the kernel's wrapper around a cell).
 */
export function describeError(err: unknown, isWrapperFrame: (frame: string) => boolean = () => false): string {
  if (!(err instanceof Error) && !(typeof err === "object" && err !== null && "stack" in err && "message" in err)) {
    return `Uncaught ${inspectValue(err)}`;
  }
  const e = err as Error & Record<string, unknown>;
  // Each part on its own: a getter or an Error.prepareStackTrace of the cell's that throws
  // costs that part, not the answer (nor the kernel: health.ts would take a throw here for a broken one).
  const header = orElse(() => (e.message ? `${e.name}: ${e.message}` : String(e.name)), "Error");
  const frames: string[] = [];
  for (const line of orElse(() => String(e.stack ?? ""), "").split("\n")) {
    if (!/^\s+at /.test(line)) continue;
    if (KERNEL_FRAME.test(line)) break;
    if (!isWrapperFrame(line)) frames.push(line);
  }
  const details = orElse(() => {
    const extra: Record<string, unknown> = {};
    for (const key of Object.keys(e)) if (key !== "stack" && key !== "message" && key !== "name") extra[key] = e[key];
    return Object.keys(extra).length ? ` ${inspectValue(extra)}` : "";
  }, "");
  return [header + details, ...frames].join("\n");
}

/** What `read` gives, or `fallback` if it throws (user code behind a getter). */
function orElse<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}
