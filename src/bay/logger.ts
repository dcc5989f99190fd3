/**
 * Bay's structured logger: one JSON object per line on stderr, or a short
 * human line per record in `pretty` mode (local runs). Every line written while
 * a request is served carries that request's id, read from the request context
 * (observability/request-context.ts), so no caller passes it by hand.
 * Callers never hand it credentials, code, commands or file contents.
 */
import { writeSync } from "node:fs";
import { currentRequest } from "./observability/request-context.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "pretty";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Whether a line at `level` would be written (lets callers skip building fields). */
  enabled(level: LogLevel): boolean;
}

/** One log record before formatting. */
export interface LogRecord {
  time: string;
  level: LogLevel;
  msg: string;
  [field: string]: unknown;
}

/** Lines kept before a flush is forced at once. */
const MAX_PENDING_LINES = 256;
/**
 * How long a line may wait for the lines after it before they go out in one write.
 * A flush costs a timer wake and a write: at 5 ms a steady client's execs paid one
 * every few calls. Measured on the exec hot path, Bays side by side in blocks
 * (2 cores): Bay's main-thread CPU per call 3-6 % lower at 100 ms than at 5 ms.
 */
export const LOG_FLUSH_MS = 100;

/**
 * Writes lines to stderr, batched: the lines of the next LOG_FLUSH_MS go out
 * in one write (a write is a system call, and at info level every request logs
 * one or two lines: under load a write per line, or per turn of the event loop,
 * was a tenth of Bay's CPU), when many have piled up, and at exit. A process
 * killed with SIGKILL loses at most the lines of its last LOG_FLUSH_MS.
 *
 * A line may be handed over unrendered (a function that renders it): it is
 * rendered when its batch is written, so a request's log lines cost its answer
 * only the record, not its JSON.
 */
export function batchedStderr(out: { write(s: string): unknown } = process.stderr, flushMs = LOG_FLUSH_MS): (line: PendingLine) => void {
  let pending: PendingLine[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    out.write(rendered(batch));
  };
  // At exit an asynchronous write that a pipe cannot take at once is cut off: the
  // default stderr is written synchronously there (a custom `out` as it writes).
  process.once("exit", () => {
    if (out !== process.stderr) return flush();
    if (timer) clearTimeout(timer);
    timer = null;
    const batch = pending;
    pending = [];
    const bytes = Buffer.from(rendered(batch));
    writeAllSync(2, bytes);
  });
  return (line) => {
    pending.push(line);
    if (pending.length >= MAX_PENDING_LINES) flush();
    else if (!timer) {
      timer = setTimeout(flush, flushMs);
      // A line waiting to be written never keeps the process alive (exit flushes it).
      timer.unref?.();
    }
  };
}

/** A log line, or what renders it (when its batch is written). */
export type PendingLine = string | (() => string);

/** The lines' text, each ended by a newline. A line that cannot be rendered is replaced by one that says so. */
function rendered(lines: PendingLine[]): string {
  let text = "";
  for (const line of lines) text += `${typeof line === "string" ? line : renderedLine(line)}\n`;
  return text;
}

/** The line `render` makes, or one that says it could not be made: a log call never throws. */
function renderedLine(render: () => string): string {
  try {
    return render();
  } catch (e) {
    return unrenderable(e);
  }
}

/** The line that stands for one that could not be made, naming why. */
function unrenderable(e: unknown): string {
  let error = "unknown";
  try {
    error = errorMessage(e);
  } catch {
    // a thrown value that cannot even be named
  }
  return JSON.stringify({ time: isoNow(), level: "error", msg: "a log line could not be rendered", error });
}

/** How long exit waits for a full stderr pipe to drain before giving up on the rest. */
const EXIT_WRITE_WAIT_MS = 2000;

/** Writes all of `bytes` to `fd`, waiting (bounded) while a non-blocking pipe is full. */
function writeAllSync(fd: number, bytes: Uint8Array): void {
  const deadline = Date.now() + EXIT_WRITE_WAIT_MS;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(fd, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN" || Date.now() > deadline) return; // closed, or nobody reads
      Atomics.wait(nap, 0, 0, 1);
    }
  }
}

/** `new Date().toISOString()`, built once per millisecond (every log line carries one). */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}
let lastMs = -1;
let lastIso = "";

/**
 * @param level lowest level written
 * @param write receives each formatted line at once (default: stderr, batched every LOG_FLUSH_MS)
 * @param format `json` (default) or `pretty`
 */
export function createLogger(level: LogLevel = "info", write?: (line: string) => void, format: LogFormat = "json"): Logger {
  const batched = write ? null : batchedStderr();
  const min = ORDER[level];
  const render = format === "pretty" ? prettyLine(Boolean(process.stderr.isTTY) && !process.env.NO_COLOR) : jsonLine;
  const log =
    (lvl: LogLevel) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      if (ORDER[lvl] < min) return;
      const requestId = currentRequest()?.requestId;
      const record: LogRecord = { time: isoNow(), level: lvl, msg };
      if (requestId !== undefined) record.request_id = requestId;
      try {
        Object.assign(record, fields);
      } catch (e) {
        // A getter that throws, a Proxy: the line says so, and the caller goes on.
        (batched ?? write!)(unrenderable(e));
        return;
      }
      // Batched: rendered when written, after the answer is on its way; a record
      // holding an object is rendered now, as the object is now (it may change
      // before its batch is written).
      const line = () => render(record);
      if (!batched) write!(renderedLine(line));
      else if (holdsObject(record)) batched(renderedLine(line));
      else batched(line);
    };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    enabled: (lvl) => ORDER[lvl] >= min,
  };
}

const jsonLine = (r: LogRecord) => JSON.stringify(r);

/** True when a field's value is an object or array (a caller may change it later). */
function holdsObject(fields: Record<string, unknown>): boolean {
  for (const key in fields) {
    const value = fields[key];
    if (typeof value === "object" && value !== null) return true;
  }
  return false;
}

const COLORS: Record<LogLevel, string> = { debug: "\x1b[90m", info: "\x1b[36m", warn: "\x1b[33m", error: "\x1b[31m" };

/**
 * `12:00:01.234 INFO  msg key=value …`; an access line reads `POST /v1/… 200 12ms`.
 * A value is written bare when it is a string with no whitespace or control
 * character, else as JSON with every control character escaped (JSON leaves DEL
 * and C1 as they are): a request's own text (a path) cannot move the cursor,
 * clear the screen or start a line on the operator's terminal.
 */
function prettyLine(color: boolean): (r: LogRecord) => string {
  // C0 and C1 control characters, DEL included (ESC and CSI start a terminal's escape sequences).
  const control = /[\x00-\x1f\x7f-\x9f]/g;
  const escapeControl = (s: string): string => s.replace(control, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  // A value that may stand bare: no whitespace, no control character.
  const bare = /^[^\s\x00-\x1f\x7f-\x9f]*$/;
  return (r) => {
    const { time, level, msg, ...fields } = r;
    const lvl = level.toUpperCase().padEnd(5);
    let head = msg;
    if (msg === "request" && typeof fields.method === "string") {
      head = `${fields.method} ${fields.route} ${fields.status} ${fields.duration_ms}ms`;
      delete fields.method, delete fields.route, delete fields.status, delete fields.duration_ms;
    }
    const rest = Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${k}=${typeof v === "string" && bare.test(v) ? v : escapeControl(String(JSON.stringify(v)))}`)
      .join(" ");
    const t = time.slice(11, 23);
    const line = `${t} ${color ? `${COLORS[level]}${lvl}\x1b[0m` : lvl} ${escapeControl(head)}${rest ? `  ${rest}` : ""}`;
    return line;
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger("error", () => {});

/** The message of an unknown thrown value, for logs. */
export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));
