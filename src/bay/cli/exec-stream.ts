/**
 * `bay sandbox exec` streamed: the run's stdout and stderr printed line by line as the
 * sandbox produces them (a long command shows its progress; Ctrl-C closes the
 * connection, which interrupts it), then what only the result holds (a Python cell's
 * value, its traceback), and the result itself for the exit code.
 */
import type { PythonExecResult, ShellExecResult } from "../api/generated/index.ts";
import { readEvents } from "../e2b/envd/sse-events.ts";
import type { CliIo } from "./args.ts";
import { ClientError, type ClientTarget, printable, send } from "./client.ts";

type ExecResult = PythonExecResult | ShellExecResult;

/** Prints complete lines of one stream as they come; the rest waits for its newline or the end. */
class LinePrinter {
  private pending = "";
  /** Everything this stream printed or holds, to tell what of the result's text is new. */
  seen = "";

  constructor(private readonly print: (line: string) => void) {}

  write(text: string): void {
    this.seen += text;
    const lines = (this.pending + text).split("\n");
    this.pending = lines.pop()!;
    for (const line of lines) this.print(line);
  }

  /** The result's full text: prints what the events did not carry (all of it when it is not what they carried), then what is pending. */
  end(full: string | null | undefined): void {
    if (full && full.startsWith(this.seen)) this.write(full.slice(this.seen.length));
    else if (full) {
      this.flush();
      this.write(full);
    }
    this.flush();
  }

  private flush(): void {
    if (this.pending !== "") this.print(this.pending);
    this.pending = "";
  }
}

/** POSTs `body` to the exec route `path` as a stream and prints it; answers the result. */
export async function streamExec<R extends ExecResult>(target: ClientTarget, path: string, body: unknown, io: CliIo): Promise<R> {
  const res = await send(target, path, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify(body),
  });
  const out = new LinePrinter((l) => io.out(l));
  const err = new LinePrinter((l) => io.err(l));
  let result: R | undefined;
  if ((res.headers.get("content-type") ?? "").startsWith("application/json")) result = (await res.json()) as R;
  else if (res.body) {
    for await (const e of readEvents(res.body)) {
      const data = e.data as { text?: string; error?: { code?: string; message?: string } };
      if (e.event === "stdout" && typeof data.text === "string") out.write(data.text);
      else if (e.event === "stderr" && typeof data.text === "string") err.write(data.text);
      else if (e.event === "result") result = e.data as R;
      else if (e.event === "error") {
        out.end(null);
        err.end(null);
        const code = data.error?.code ?? "error";
        throw new ClientError(printable(`${code}: ${data.error?.message ?? "the run failed"}`), code, res.status);
      }
    }
  }
  if (!result) throw new ClientError("the run's stream ended without its result", "incomplete", res.status);
  out.end(result.output);
  err.end(result.error);
  return result;
}
