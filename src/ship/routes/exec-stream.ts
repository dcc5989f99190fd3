/**
 * Streamed execs (`Accept: text/event-stream`): the run's output as server-sent events
 * (`stdout` / `stderr` {text}, `display` {data}) while it runs, then `result` (the body
 * the call answers without streaming) or `error` (the error body). A client that goes
 * away interrupts the code (kernels: SIGINT; commands: their process group is killed).
 */
import { ShipError } from "../errors.ts";
import type { CellEnv } from "../kernel/kernel-process.ts";
import type { SupervisedKernel } from "../kernel/supervised-kernel.ts";
import { execCommand, type CommandResult } from "../shell/exec-command.ts";
import type { CommandSpec } from "../shell/spawn.ts";
import { type SseSink, sseResponse } from "../sse.ts";

function errorBody(e: unknown): unknown {
  if (e instanceof ShipError) return e.toBody();
  console.error("[ship] internal error in a stream:", e);
  return new ShipError("internal_error", "internal error").toBody();
}

/**
 * Runs code in a kernel, streaming its events. Backpressure reaches the kernel: while
 * the client reads slowly, the kernel's channel is not read, and the kernel waits.
 * A full queue is refused (429) before the stream opens.
 */
export function streamKernelExec(
  signal: AbortSignal,
  kernel: SupervisedKernel,
  code: string,
  timeoutSeconds: number,
  env: CellEnv = {},
): Response {
  kernel.admit();
  return sseResponse(
    signal,
    async (sink) => {
      const result = await kernel.exec(code, timeoutSeconds, {
        ...env,
        signal: sink.signal,
        interruptOnAbort: true,
        onEvent: (event) =>
          event.event === "stream" ? sink.send(event.name, { text: event.text }) : sink.send("display", { data: event.data }),
      });
      await sink.send("result", result);
    },
    errorBody,
  );
}

/**
 * Output of a command waiting for the client. The command itself never waits for the
 * client (its pipes are drained at full speed, as without streaming); what waits here
 * is what the result keeps anyway, so at most the output cap per stream.
 */
class OutputFeed {
  private queue: Array<{ name: "stdout" | "stderr"; bytes: Uint8Array }> = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private dropping = false;
  private release!: () => void;
  private readonly released = new Promise<false>((resolve) => {
    this.release = () => resolve(false);
  });

  push(name: "stdout" | "stderr", bytes: Uint8Array): void {
    if (this.dropping) return;
    this.queue.push({ name, bytes });
    this.wakeUp();
  }

  /** No more output: forward() ends once the queue is sent. */
  end(): void {
    this.ended = true;
    this.wakeUp();
  }

  /** Nothing more is sent (the run failed): forward() ends now. */
  drop(): void {
    this.dropping = true;
    this.queue = [];
    this.release();
    this.end();
  }

  /** Sends the output as events until end() (or drop()), at the pace the client reads. */
  async forward(sink: SseSink): Promise<void> {
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        const text = decoders[next.name].decode(next.bytes, { stream: true });
        if (text && !(await Promise.race([sink.send(next.name, { text }), this.released]))) return;
        continue;
      }
      if (this.ended) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    for (const name of ["stdout", "stderr"] as const) {
      const rest = decoders[name].decode();
      if (rest && !this.dropping) await sink.send(name, { text: rest });
    }
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** Runs a foreground command, streaming its stdout and stderr. */
export function streamCommand(signal: AbortSignal, spec: CommandSpec & { timeoutSeconds: number; maxOutputBytes: number }): Response {
  return sseResponse(
    signal,
    async (sink) => {
      const feed = new OutputFeed();
      const forwarding = feed.forward(sink);
      let result: CommandResult;
      try {
        result = await execCommand(spec, { onOutput: (name, bytes) => feed.push(name, bytes), signal: sink.signal });
      } catch (err) {
        feed.drop();
        await forwarding;
        throw err;
      }
      feed.end();
      await forwarding;
      await sink.send("result", result);
    },
    errorBody,
  );
}
