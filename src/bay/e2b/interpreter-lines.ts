/**
 * The code interpreter's NDJSON messages, as @e2b/code-interpreter reads them:
 * `stdout`/`stderr` {text}, `result` with E2B's field per MIME type (`text`,
 * `png`, …; others under `extra`), `error` {name, value, traceback},
 * `number_of_executions`, `end_of_execution`.
 */

/** Bay's python exec answer (Ship's PythonExecResult). */
export interface PythonResult {
  success: boolean;
  output: string;
  error: string | null;
  data: Array<{ type: "execute_result" | "display_data"; data: Record<string, string> }>;
  execution_count: number | null;
}

/** MIME types and the Result fields E2B's SDK reads them into. */
const MIME_FIELDS: Record<string, string> = {
  "text/plain": "text",
  "text/html": "html",
  "text/markdown": "markdown",
  "image/svg+xml": "svg",
  "image/png": "png",
  "image/jpeg": "jpeg",
  "application/pdf": "pdf",
  "text/latex": "latex",
  "application/json": "json",
  "application/javascript": "javascript",
};

/** The NDJSON messages of one finished Python exec, in the order the SDK expects them. */
export function executionLines(r: PythonResult): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  // Bay's output ends with the last expression's text/plain, which E2B sends as the result instead.
  const main = r.data.find((d) => d.type === "execute_result");
  let stdout = r.output;
  const plain = main?.data["text/plain"];
  if (plain !== undefined) {
    if (stdout.endsWith(`${plain}\n`)) stdout = stdout.slice(0, -(plain.length + 1));
    else if (stdout.endsWith(plain)) stdout = stdout.slice(0, -plain.length);
  }
  if (stdout) lines.push(outputLine("stdout", stdout));
  for (const d of r.data) lines.push(resultLine(d.data, d.type === "execute_result"));
  if (!r.success && r.error) lines.push(errorLine(r.error));
  if (r.execution_count !== null) lines.push({ type: "number_of_executions", execution_count: r.execution_count });
  lines.push({ type: "end_of_execution" });
  return lines;
}

/**
 * A stdout or stderr line, stamped with when Bay relayed it: E2B's interpreter sends
 * the time of every output line, and the Python SDK reads it (`data["timestamp"]`)
 * before calling `on_stdout`/`on_stderr`; without it the call fails with KeyError.
 */
export function outputLine(type: "stdout" | "stderr", text: string): Record<string, unknown> {
  return { type, text, timestamp: new Date().toISOString() };
}

export function resultLine(data: Record<string, string>, isMain: boolean): Record<string, unknown> {
  const line: Record<string, unknown> = { type: "result", is_main_result: isMain };
  const extra: Record<string, string> = {};
  for (const [mime, value] of Object.entries(data)) {
    const field = MIME_FIELDS[mime];
    if (field) line[field] = value;
    else extra[mime] = value;
  }
  // As E2B's interpreter does: a string result's text/plain is its repr, and one pair of single quotes is taken off.
  if (typeof line.text === "string" && line.text.startsWith("'") && line.text.endsWith("'")) line.text = line.text.slice(1, -1);
  if (Object.keys(extra).length > 0) line.extra = extra;
  return line;
}

/**
 * name and value from a trace: a Python traceback's last line ("ZeroDivisionError:
 * division by zero"), otherwise the first line that reads as one (JavaScript's
 * "TypeError: x is not a function", before its stack).
 */
export function errorLine(traceback: string): Record<string, unknown> {
  const lines = traceback
    .trimEnd()
    .split("\n")
    .filter((l) => l.trim() !== "");
  const python = lines[0]?.startsWith("Traceback") || lines.length === 1;
  const last = (python ? lines.pop() : lines.find((l) => /^[A-Za-z_][\w.]*(:|$)/.test(l.trim()))) ?? "";
  const m = /^([A-Za-z_][\w.]*)(?::\s?(.*))?$/.exec(last.trim());
  return { type: "error", name: m?.[1] ?? "Error", value: m ? (m[2] ?? "") : last, traceback };
}
