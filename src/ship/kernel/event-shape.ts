/**
 * The shape of the events a kernel sends. The protocol channel is private to the
 * kernel, not to its user code: a cell runs in the kernel's own process and can
 * write to the channel's descriptor (os.write, fs.writeSync). A well-formed line
 * written that way is no more than output the cell chose to produce; a malformed
 * one must not become an answer that breaks the API's schema (a result whose
 * `output` is an object, a display whose data is null), so such lines are ignored
 * like any other line that is not the protocol, and a result keeps its fields only.
 */
import type { KernelDataItem, ResultEvent } from "./protocol.ts";

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A MIME bundle: MIME type → text. */
export const isMimeBundle = (v: unknown): v is Record<string, string> =>
  isRecord(v) && Object.values(v).every((x) => typeof x === "string");

const isDataItem = (v: unknown): v is KernelDataItem =>
  isRecord(v) && (v.type === "execute_result" || v.type === "display_data") && isMimeBundle(v.data);

/** A `stream` event's payload is well formed. */
export const isStreamEvent = (m: Record<string, unknown>): boolean =>
  (m.name === "stdout" || m.name === "stderr") && typeof m.text === "string";

/** A `display` event's payload is well formed. */
export const isDisplayEvent = (m: Record<string, unknown>): boolean => isMimeBundle(m.data);

/** A `result` event's fields, exactly those of the protocol, or null when any is malformed. */
export function resultFields(m: Record<string, unknown>): Omit<ResultEvent, "event" | "id"> | null {
  const count = m.execution_count;
  if (
    typeof m.success !== "boolean" ||
    typeof m.output !== "string" ||
    !(m.error === null || typeof m.error === "string") ||
    !Array.isArray(m.data) ||
    !m.data.every(isDataItem) ||
    !(count === null || (typeof count === "number" && Number.isSafeInteger(count))) ||
    typeof m.truncated !== "boolean"
  ) {
    return null;
  }
  return {
    success: m.success,
    output: m.output,
    error: m.error,
    data: m.data.map((d) => ({ type: d.type, data: d.data })),
    execution_count: count,
    truncated: m.truncated,
  };
}
