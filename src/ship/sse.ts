/**
 * Server-sent events for Ship's streamed answers (exec output, process output,
 * file watch). Events are written as they happen, never buffered beyond the
 * stream's own small queue; a comment line every `heartbeatMs` keeps proxies
 * open; when the client goes away (`signal` aborts) the producer is told, so it
 * can stop what it runs. Event names and payloads are Bay's contract, so Bay can
 * pass the bytes through unchanged.
 */

/** Where a producer writes its events. */
export interface SseSink {
  /**
   * Writes one event (`data` is JSON-encoded). Resolves once the stream has room
   * again (a slow reader slows the producer instead of growing a buffer); false
   * once the stream is closed.
   */
  send(event: string, data: unknown): Promise<boolean>;
  /** Ends the stream. */
  close(): void;
  /** True once the client went away or the stream was closed. */
  readonly closed: boolean;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
}

export interface SseOptions {
  /** Comment line interval; default 10 s (the contract says at most 15). */
  heartbeatMs?: number;
  /** Bytes the stream may hold for a slow reader before `send` waits (backpressure); default 1 MiB. */
  highWaterMark?: number;
}

const encoder = new TextEncoder();

/** Encodes one event: `event: <name>` and one `data:` line (JSON never contains a newline). */
export function encodeEvent(event: string, data: unknown): Uint8Array {
  return encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * A `text/event-stream` Response whose events `produce` writes. `signal` is the
 * request's (it aborts when the client disconnects). The stream closes when
 * `produce` settles; a throw becomes an `error` event carrying `toErrorBody(e)`.
 */
export function sseResponse(
  signal: AbortSignal,
  produce: (sink: SseSink) => Promise<void>,
  toErrorBody: (e: unknown) => unknown,
  opts: SseOptions = {},
): Response {
  const abort = new AbortController();
  const onAbort = () => abort.abort();
  if (signal.aborted) abort.abort();
  else signal.addEventListener("abort", onAbort, { once: true });
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  /** Resolves a producer waiting for room (on pull, or when the stream ends). */
  let wake: (() => void) | null = null;
  const room = async (): Promise<void> => {
    while (!closed && (controller.desiredSize ?? 1) <= 0) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    wake?.();
    signal.removeEventListener("abort", onAbort);
    try {
      controller.close();
    } catch {
      // Already cancelled by the client.
    }
  };
  const write = (bytes: Uint8Array): boolean => {
    if (closed) return false;
    try {
      controller.enqueue(bytes);
      return true;
    } catch {
      close();
      return false;
    }
  };
  const sink: SseSink = {
    send: async (event, data) => {
      if (!write(encodeEvent(event, data))) return false;
      await room();
      return !closed;
    },
    close,
    get closed() {
      return closed || abort.signal.aborted;
    },
    signal: abort.signal,
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        heartbeat = setInterval(() => write(encoder.encode(": ping\n\n")), opts.heartbeatMs ?? 10_000);
        heartbeat.unref?.();
        // A first comment so that headers and a byte reach the client at once.
        write(encoder.encode(": stream open\n\n"));
        queueMicrotask(() => {
          produce(sink)
            .catch((e: unknown) => {
              write(encodeEvent("error", toErrorBody(e)));
            })
            .finally(close);
        });
      },
      pull() {
        const w = wake;
        wake = null;
        w?.();
      },
      cancel() {
        abort.abort();
        close();
      },
    },
    { highWaterMark: opts.highWaterMark ?? 1024 * 1024, size: (chunk) => chunk?.byteLength ?? 0 },
  );
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}

/** True when the request asks for a stream of events. */
export const wantsEventStream = (req: Request): boolean => /\btext\/event-stream\b/i.test(req.headers.get("accept") ?? "");
