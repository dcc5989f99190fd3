/**
 * Bookkeeping that a request's answer does not wait for: its metrics, its log lines,
 * the lifecycle's notes after a call. Queued here, it runs once the answer has been
 * handed to the server (one `setImmediate` for everything queued in the meantime),
 * so a call's latency carries none of it. Each piece runs in the request context it
 * was queued in, so its log lines still name their request.
 *
 * A piece that throws is rethrown on its own (the process policy logs it and keeps
 * serving); the others still run.
 */
import { currentRequest, outsideRequest, type RequestContext, runInRequest } from "./request-context.ts";

interface Queued {
  readonly ctx: RequestContext | undefined;
  readonly work: () => void;
}

let queued: Queued[] = [];
let scheduled = false;

/** Runs `work` after the current answer is on its way, in the current request's context. */
export function afterAnswer(work: () => void): void {
  queued.push({ ctx: currentRequest(), work });
  if (scheduled) return;
  scheduled = true;
  setImmediate(drain);
}

function drain(): void {
  const batch = queued;
  queued = [];
  scheduled = false;
  for (const { ctx, work } of batch) {
    try {
      // The batch runs in the context it was scheduled from: each piece is put in its own.
      if (ctx) runInRequest(ctx, work);
      else outsideRequest(work);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}

/**
 * Resolves once what was queued so far has run: for a caller in the same process that
 * reads the log or the metrics right after an answer (tests; a real client's next
 * request comes over the network, after it).
 */
export function afterAnswersRan(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
