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
import { ClientError, type ClientTarget, MAX_ANSWER_BYTES, printable, readText, send } from "./client.ts";

/** Text without a newline held at most this long; past it, it is written as it is (a line of its own would change it). */
const MAX_PENDING_CHARS = 64 * 1024;

/** Prints complete lines of one stream as they come; the rest waits for its newline or the end. */
class LinePrinter {
  private pending = "";
  /** Text of the current line was written already (raw): its end still owes a newline. */
  private open = false;

  constructor(
    private readonly print: (line: string) => void,
    private readonly raw: ((text: string) => void) | undefined,
  ) {}

  write(text: string): void {
    let nl = text.indexOf("\n");
    if (nl === -1) {
      this.pending += text;
      if (this.pending.length > MAX_PENDING_CHARS) {
        const part = this.pending;
        this.pending = "";
        if (this.raw) {
          this.raw(part);
          this.open = true;
        } else this.print(part);
      }
      return;
    }
    this.print(this.pending + text.slice(0, nl));
    this.open = false;
    let start = nl + 1;
    while ((nl = text.indexOf("\n", start)) !== -1) {
      this.print(text.slice(start, nl));
      start = nl + 1;
    }
    this.pending = "";
    this.write(text.slice(start));
  }

  flush(): void {
    if (this.pending !== "" || this.open) this.print(this.pending);
    this.pending = "";
    this.open = false;
  }
}

/** The most of one streamed text kept to compare with the result (Bay's results hold at most 1 MiB of output). */
const MAX_KEPT_CHARS = 4 * 1024 * 1024;

/**
 * What was streamed of one text, to tell what of the result's text the events did not
 * carry (never the whole text twice). Past MAX_KEPT_CHARS only that it was more is kept:
 * no result starts with it then, and a server that streams without end fills no memory.
 */
class Streamed {
  private text = "";
  private over = false;

  add(text: string): void {
    if (this.over) return;
    if (this.text.length + text.length > MAX_KEPT_CHARS) {
      this.over = true;
      this.text = "";
    } else this.text += text;
  }

  /** The rest of `full` after what was streamed, or nothing when `full` does not start with it. */
  restOf(full: string | null | undefined): string {
    if (this.over || typeof full !== "string" || !full.startsWith(this.text)) return "";
    return full.slice(this.text.length);
  }
}

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
  const write = io.write;
  const out = new LinePrinter(
    guarded((l) => io.out(l)),
    write && guarded((t) => write("out", t)),
  );
  const err = new LinePrinter(
    guarded((l) => io.err(l)),
    write && guarded((t) => write("err", t)),
  );
  // Python's `output` holds stdout and stderr in the order they came; a shell's `output` is stdout, `error` stderr.
  const stdout = new Streamed();
  const stderr = new Streamed();
  const both = new Streamed();
  try {
    const res = await send(target, path, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    let result: R | undefined;
    if ((res.headers.get("content-type") ?? "").startsWith("application/json"))
      result = JSON.parse(await readText(res, MAX_ANSWER_BYTES)) as R;
    else if (res.body) {
      for await (const e of readEvents(res.body, MAX_EVENT_BYTES, ac.signal)) {
        const data = e.data as { text?: unknown; error?: { code?: unknown; message?: unknown } } | null;
        const text = typeof data?.text === "string" ? data.text : undefined;
        if (e.event === "stdout" && text !== undefined) {
          (kind === "python" ? both : stdout).add(text);
          out.write(text);
        } else if (e.event === "stderr" && text !== undefined) {
          (kind === "python" ? both : stderr).add(text);
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
      out.write(both.restOf(result.output));
      out.flush();
      err.flush();
      // A cell's traceback is never streamed: it comes with the result only.
      if (result.error) err.write(result.error.endsWith("\n") ? result.error : `${result.error}\n`);
    } else {
      out.write(stdout.restOf(result.output));
      err.write(stderr.restOf(result.error));
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
