/**
 * The event stream of a streamed exec (`ExecEvents` in the spec): `event:` and
 * one `data:` line of JSON per event, comment lines (`: ping`) between them;
 * `stdout`/`stderr` carry `{text}`, `display` `{data}`, and the last event is
 * exactly one `result` (the body the call answers without streaming) or `error`
 * (an ErrorBody). Parsing and checking are kept here, apart from the verdicts.
 */
import { type Schema, validate } from "./json-schema.ts";

export interface SseEvent {
  event: string;
  data: string;
}

/** The events of an SSE body, in order (comments skipped; an event without `event:` is `message`). */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event = "message";
    const data: string[] = [];
    let any = false;
    for (const line of block.split(/\r?\n/)) {
      if (line === "" || line.startsWith(":")) continue;
      any = true;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (any) events.push({ event, data: data.join("\n") });
  }
  return events;
}

/** The outcome a stream ends with: its result, or the error code of its error event. */
export type StreamEnd = { kind: "result" } | { kind: "error"; code: string | null } | { kind: "none" };

/** Violations of the ExecEvents rules by `text`, and how the stream ended. */
export function checkExecEvents(text: string, resultSchema: Schema, errorBody: Schema): { violations: string[]; end: StreamEnd } {
  const events = parseSse(text);
  const violations: string[] = [];
  const json = (e: SseEvent): unknown => {
    try {
      return JSON.parse(e.data);
    } catch {
      violations.push(`stream event ${e.event} whose data is not JSON`);
      return undefined;
    }
  };
  const last = events.at(-1);
  if (!last || (last.event !== "result" && last.event !== "error")) {
    violations.push("stream does not end with a result or error event");
    return { violations, end: { kind: "none" } };
  }
  for (const e of events.slice(0, -1)) {
    if (e.event === "result" || e.event === "error") violations.push(`stream has a ${e.event} event before its last one`);
    else if (e.event === "stdout" || e.event === "stderr") {
      const v = json(e) as { text?: unknown } | undefined;
      if (v !== undefined && typeof v?.text !== "string") violations.push(`stream ${e.event} event without a text`);
    } else if (e.event === "display") {
      const v = json(e) as { data?: unknown } | undefined;
      if (v !== undefined && (typeof v?.data !== "object" || v.data === null)) violations.push("stream display event without data");
    } else violations.push(`stream event of unknown kind ${JSON.stringify(e.event).slice(0, 40)}`);
  }
  const value = json(last);
  if (value === undefined) return { violations, end: { kind: "none" } };
  if (last.event === "result") {
    const errs = validate(resultSchema, value);
    if (errs.length) violations.push(`stream result breaks the response schema: ${errs[0]}`);
    return { violations, end: { kind: "result" } };
  }
  const errs = validate(errorBody, value);
  if (errs.length) violations.push(`stream error event breaks ErrorBody: ${errs[0]}`);
  const code = (value as { error?: { code?: unknown } } | null)?.error?.code;
  return { violations, end: { kind: "error", code: typeof code === "string" ? code : null } };
}
