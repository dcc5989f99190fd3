/**
 * A streamed code exec (Bay's event stream: `stdout`/`stderr` {text}, `display`
 * {data}, then `result` or `error`) as the code interpreter's NDJSON: one line per
 * event as it arrives, then the main result, the error, the execution count and
 * `end_of_execution`. Nothing is buffered beyond the event being translated.
 */
import { KEEPALIVE, withKeepalive } from "./envd/keepalive.ts";
import { readEvents } from "./envd/sse-events.ts";
import { errorLine, outputLine, resultLine } from "./interpreter-lines.ts";

interface ExecResult {
  success: boolean;
  error: string | null;
  data?: Array<{ type: "execute_result" | "display_data"; data: Record<string, string> }>;
  execution_count?: number | null;
}

/** What E2B's interpreter sends while a run is silent; both SDKs skip a type they do not know. */
export const KEEPALIVE_LINE = { type: "keepalive" } as const;
/** How often it is sent (E2B's interpreter: every 5 s). */
export const KEEPALIVE_MS = 5_000;

/**
 * The NDJSON lines of one exec's events; with `keepaliveMs`, a keepalive line whenever no
 * event came for that long, as E2B's interpreter sends it (none after the end line: the
 * lines end there, and the wrapper reads nothing ahead).
 */
export async function* ndjsonFromEvents(body: ReadableStream<Uint8Array>, keepaliveMs?: number): AsyncIterable<Record<string, unknown>> {
  let displays = 0;
  const events = keepaliveMs ? withKeepalive(readEvents(body), keepaliveMs) : readEvents(body);
  for await (const e of events) {
    if (e === KEEPALIVE) {
      yield KEEPALIVE_LINE;
      continue;
    }
    const data = e.data as Record<string, unknown>;
    if (e.event === "stdout" || e.event === "stderr") {
      yield outputLine(e.event, data.text as string);
    } else if (e.event === "display") {
      displays++;
      yield resultLine(data.data as Record<string, string>, false);
    } else if (e.event === "result") {
      const r = data as unknown as ExecResult;
      for (const d of r.data ?? []) {
        // Rich outputs already went out as display events; the main result has not.
        if (d.type === "display_data" && displays > 0) continue;
        yield resultLine(d.data, d.type === "execute_result");
      }
      if (!r.success && r.error) yield errorLine(r.error);
      if (typeof r.execution_count === "number") yield { type: "number_of_executions", execution_count: r.execution_count };
      yield { type: "end_of_execution" };
      return;
    } else if (e.event === "error") {
      const err = (data.error ?? {}) as { code?: string; message?: string };
      const name = err.code === "timeout" ? "TimeoutError" : "ExecutionError";
      yield { type: "error", name, value: err.message ?? "the execution failed", traceback: err.message ?? "" };
      yield { type: "end_of_execution" };
      return;
    }
  }
  yield { type: "error", name: "ExecutionError", value: "the execution's stream ended early", traceback: "" };
  yield { type: "end_of_execution" };
}

/** An NDJSON response body from lines produced one at a time; `cancelSource` ends what they are read from. */
export function ndjsonBody(
  lines: AsyncIterable<Record<string, unknown>>,
  cancelSource: (reason: unknown) => Promise<void> = async () => {},
): ReadableStream<Uint8Array> {
  const it = lines[Symbol.asyncIterator]();
  const enc = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const { done, value } = await it.next();
        if (done) ctrl.close();
        else ctrl.enqueue(enc.encode(`${JSON.stringify(value)}\n`));
      } catch (e) {
        ctrl.error(e);
      }
    },
    async cancel(reason) {
      // A generator's return() waits behind its pending next(), which waits on a source that may
      // be silent for minutes (a long exec): the source is cancelled first, which ends that read.
      await cancelSource(reason);
      await it.return?.();
    },
  });
}

/**
 * `body` through a reader of its own, with a `cancel` that works while a read is
 * pending (a stream locked by its consumer cannot be cancelled from outside).
 */
export function cancellable(body: ReadableStream<Uint8Array>): {
  stream: ReadableStream<Uint8Array>;
  cancel: (reason: unknown) => Promise<void>;
} {
  const reader = body.getReader();
  const cancel = (reason: unknown) => reader.cancel(reason).catch(() => {});
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        const r = await reader.read();
        if (r.done) ctrl.close();
        else ctrl.enqueue(r.value);
      },
      cancel,
    },
    { highWaterMark: 0 },
  );
  return { stream, cancel };
}
