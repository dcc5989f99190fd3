/**
 * A streamed code exec (Bay's event stream: `stdout`/`stderr` {text}, `display`
 * {data}, then `result` or `error`) as the code interpreter's NDJSON: one line per
 * event as it arrives, then the main result, the error, the execution count and
 * `end_of_execution`. Nothing is buffered beyond the event being translated.
 */
import { readEvents } from "./envd/sse-events.ts";
import { errorLine, outputLine, resultLine } from "./interpreter-lines.ts";

interface ExecResult {
  success: boolean;
  error: string | null;
  data?: Array<{ type: "execute_result" | "display_data"; data: Record<string, string> }>;
  execution_count?: number | null;
}

/** The NDJSON lines of one exec's events. */
export async function* ndjsonFromEvents(body: ReadableStream<Uint8Array>): AsyncIterable<Record<string, unknown>> {
  let displays = 0;
  for await (const e of readEvents(body)) {
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

/** What E2B's interpreter sends while a run is silent; both SDKs skip a type they do not know. */
export const KEEPALIVE_LINE = { type: "keepalive" } as const;
/** How often it is sent (E2B's interpreter: every 5 s). */
export const KEEPALIVE_MS = 5_000;

const TICK = Symbol("tick");

/**
 * An NDJSON response body from lines produced one at a time; `cancelSource` ends what they are read from.
 * While no line comes for `keepaliveMs`, a keepalive line is sent in its place, as E2B's interpreter
 * does: a proxy in between does not cut a silent run for idleness, and a client that vanished is
 * found by the failing write instead of at the run's end.
 */
export function ndjsonBody(
  lines: AsyncIterable<Record<string, unknown>>,
  cancelSource: (reason: unknown) => Promise<void> = async () => {},
  keepaliveMs?: number,
): ReadableStream<Uint8Array> {
  const it = lines[Symbol.asyncIterator]();
  const enc = new TextEncoder();
  const keepalive = enc.encode(`${JSON.stringify(KEEPALIVE_LINE)}\n`);
  // A line being waited for survives a keepalive: the next pull waits on the same one.
  let pending: Promise<IteratorResult<Record<string, unknown>>> | null = null;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        if (!pending) {
          pending = it.next();
          // Handled here too: a keepalive pull returns before it settles, and it may fail before the next pull.
          pending.catch(() => {});
        }
        const next = keepaliveMs ? await raceTick(pending, keepaliveMs) : await pending;
        if (next === TICK) {
          ctrl.enqueue(keepalive);
          return;
        }
        pending = null;
        if (next.done) ctrl.close();
        else ctrl.enqueue(enc.encode(`${JSON.stringify(next.value)}\n`));
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

/** `p`'s value, or TICK once `ms` pass first. */
async function raceTick<T>(p: Promise<T>, ms: number): Promise<T | typeof TICK> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = new Promise<typeof TICK>((resolve) => {
    timer = setTimeout(() => resolve(TICK), ms);
  });
  try {
    return await Promise.race([p, tick]);
  } finally {
    clearTimeout(timer);
  }
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
