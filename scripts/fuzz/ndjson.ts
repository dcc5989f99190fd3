/**
 * The E2B code interpreter's answer to `/execute`: NDJSON, one JSON object a
 * line, as @e2b/code-interpreter reads it (src/bay/e2b/interpreter-lines.ts):
 * `stdout`/`stderr` {text, timestamp}, `result` {is_main_result, one field per
 * MIME type}, `error` {name, value, traceback}, `number_of_executions`
 * {execution_count}, `keepalive` (nothing else) while a run is silent, and exactly
 * one `end_of_execution`, the last line.
 */

/** How a stream ended: with its end line, or cut (Bay's own line for a run whose events stopped early). */
export type NdjsonEnd = "end" | "cut" | "none";

/** What Bay writes when the run's event stream ended without its result (interpreter-stream.ts). */
const CUT_VALUE = "the execution's stream ended early";

const isStr = (v: unknown) => typeof v === "string";

/** Violations of the interpreter's NDJSON rules by `text`, and how it ended. */
export function checkNdjson(text: string): { violations: string[]; end: NdjsonEnd } {
  const violations: string[] = [];
  if (text.length > 0 && !text.endsWith("\n")) violations.push("NDJSON answer whose last line has no newline");
  const lines = text.split("\n").filter((l, i, all) => !(l === "" && i === all.length - 1));
  let end: NdjsonEnd = "none";
  for (const [i, line] of lines.entries()) {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      violations.push(`NDJSON line that is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) {
      violations.push("NDJSON line that is not an object");
      continue;
    }
    const o = v as Record<string, unknown>;
    const bad = (what: string) => violations.push(`NDJSON ${String(o.type).slice(0, 40)} line ${what}`);
    switch (o.type) {
      case "stdout":
      case "stderr":
        if (!isStr(o.text)) bad("without a text");
        if (!isStr(o.timestamp)) bad("without a timestamp");
        break;
      case "result":
        if (typeof o.is_main_result !== "boolean") bad("without is_main_result");
        break;
      case "error":
        if (!isStr(o.name) || !isStr(o.value) || !isStr(o.traceback)) bad("without name, value and traceback");
        if (o.value === CUT_VALUE) end = "cut";
        break;
      case "number_of_executions":
        if (!Number.isInteger(o.execution_count)) bad("without an integer execution_count");
        break;
      case "keepalive":
        if (Object.keys(o).length !== 1) bad("with more than its type");
        break;
      case "end_of_execution":
        if (i !== lines.length - 1) violations.push("NDJSON end_of_execution before the last line");
        else if (end !== "cut") end = "end";
        break;
      default:
        violations.push(`NDJSON line of unknown type ${JSON.stringify(o.type).slice(0, 40)}`);
    }
  }
  if (lines.at(-1) === undefined || !/"type":"end_of_execution"/.test(lines.at(-1)!))
    violations.push("NDJSON answer that does not end with end_of_execution");
  return { violations, end };
}
