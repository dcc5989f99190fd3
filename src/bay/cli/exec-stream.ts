/**
 * `bay sandbox exec` streamed: the run's stdout and stderr printed line by line as the
 * sandbox produces them (a long command shows its progress; Ctrl-C closes the
 * connection, which interrupts it), then what only the result holds (a Python cell's
 * value, its traceback), and the result itself for the exit code. A reader that goes
 * away (`| head -1`) interrupts the run too.
 */
import type { PythonExecResult, ShellExecResult } from "../api/generated/index.ts";
import { readEvents } from "../e2b/envd/sse-events.ts";
import { MAX_EVENT_BYTES } from "../runtime/event-stream.ts";
import type { CliIo } from "./args.ts";
import { ClientError, type ClientTarget, printable, send } from "./client.ts";

/** Prints complete lines of one stream as they come; the rest waits for its newline or the end. */
class LinePrinter {
  private pending = "";

  constructor(private readonly print: (line: string) => void) {}

  write(text: string): void {
    let nl = text.indexOf("\n");
    if (nl === -1) {
      this.pending += text;
      return;
    }
    this.print(this.pending + text.slice(0, nl));
    let start = nl + 1;
    while ((nl = text.indexOf("\n", start)) !== -1) {
      this.print(text.slice(start, nl));
      start = nl + 1;
    }
    this.pending = text.slice(start);
  }

  flush(): void {
    if (this.pending !== "") this.print(this.pending);
    this.pending = "";
  }
}

/**
 * What of the result's text the events did not carry: the rest after `streamed`, or
 * nothing when the result does not start with it (never the whole text twice).
 */
const rest = (full: string | null | undefined, streamed: string) => (full?.startsWith(streamed) ? full.slice(streamed.length) : "");

const closed = () => new ClientError("the output was closed; the run was interrupted", "output_closed", 0);

/** The run, streamed to `io`; answers its result. `kind` says how the result's text relates to the events. */
export async function streamExec<R extends PythonExecResult | ShellExecResult>(
  target: ClientTarget,
  path: string,
  body: unknown,
  io: CliIo,
  kind: "python" | "shell",
): Promise<R> {
  const ac = new AbortController();
  let gone = false;
  const outputGone = () => {
    gone = true;
    ac.abort();
  };
  const stopWatching = io.outputGone?.(outputGone);
  const guarded = (print: (line: string) => void) => (line: string) => {
    if (gone) return;
    try {
      print(line);
    } catch (e) {
      if ((e as { code?: string }).code !== "EPIPE") throw e;
      outputGone();
    }
  };
  const out = new LinePrinter(guarded((l) => io.out(l)));
  const err = new LinePrinter(guarded((l) => io.err(l)));
  // Python's `output` holds stdout and stderr in the order they came; a shell's `output` is stdout, `error` stderr.
  let stdout = "";
  let stderr = "";
  let both = "";
  try {
    const res = await send(target, path, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    let result: R | undefined;
    if ((res.headers.get("content-type") ?? "").startsWith("application/json")) result = (await res.json()) as R;
    else if (res.body) {
      for await (const e of readEvents(res.body, MAX_EVENT_BYTES, ac.signal)) {
        const data = e.data as { text?: unknown; error?: { code?: unknown; message?: unknown } } | null;
        const text = typeof data?.text === "string" ? data.text : undefined;
        if (e.event === "stdout" && text !== undefined) {
          stdout += text;
          both += text;
          out.write(text);
        } else if (e.event === "stderr" && text !== undefined) {
          stderr += text;
          both += text;
          err.write(text);
        } else if (e.event === "result") result = e.data as R;
        else if (e.event === "error") {
          const code = typeof data?.error?.code === "string" ? data.error.code : "error";
          const message = typeof data?.error?.message === "string" ? data.error.message : "the run failed";
          throw new ClientError(printable(`${code}: ${message}`), code, res.status);
        }
      }
    }
    if (gone) throw closed();
    if (!result || typeof result !== "object") throw new ClientError("the run's stream ended without its result", "incomplete", res.status);
    if (kind === "python") {
      out.write(rest(result.output, both));
      out.flush();
      err.flush();
      // A cell's traceback is never streamed: it comes with the result only.
      if (result.error) err.write(result.error.endsWith("\n") ? result.error : `${result.error}\n`);
    } else {
      out.write(rest(result.output, stdout));
      err.write(rest(result.error, stderr));
    }
    return result;
  } catch (e) {
    throw gone ? closed() : e;
  } finally {
    stopWatching?.();
    out.flush();
    err.flush();
  }
}
