/**
 * Streamed execs (`Accept: text/event-stream`) as an async iterable of events: output
 * as it is produced, then the same result the call answers without streaming (or an
 * `error` event: a timeout with the output so far). Leaving the loop closes the
 * connection, which interrupts the run in the sandbox.
 */
import type { BayClient } from "./index.ts";
import type { components } from "./schema.ts";

type Schemas = components["schemas"];

/** One event of a streamed exec. */
export type ExecEvent =
  | { event: "stdout" | "stderr"; data: { text: string } }
  | { event: "display"; data: { data: Record<string, string> } }
  | { event: "result"; data: Schemas["PythonExecResult"] | Schemas["ShellExecResult"] }
  | { event: "error"; data: Schemas["ErrorBody"] };

/** The exec routes that stream, and their request bodies. */
export interface ExecBodies {
  python: Schemas["PythonExecRequest"];
  shell: Schemas["ShellExecRequest"];
  code: Schemas["CodeExecRequest"];
}

/** The longest event-stream line or event data taken (Bay's own events are far smaller). */
const MAX_EVENT_BYTES = 64 * 1024 * 1024;

/**
 * A call Bay refused before the run started (not found, validation, a full queue): its
 * status and error body. An answer that is not Bay's (a proxy's page) or a stream that
 * cannot be read (data that is not JSON, a line over 64 MiB) has the code `bad_answer`.
 */
export class BayRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: Schemas["ErrorBody"],
  ) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
    this.name = "BayRequestError";
  }
}

function badAnswer(status: number, message: string): BayRequestError {
  return new BayRequestError(status, { error: { code: "bad_answer", message, details: {}, request_id: "" } } as never);
}

/** Bay's error body when `value` is one, else a `bad_answer` naming the start of `text`. */
function refusal(status: number, value: unknown, text: string): BayRequestError {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error?.code === "string" && typeof error.message === "string")
    return new BayRequestError(status, value as Schemas["ErrorBody"]);
  return badAnswer(status, `not Bay's error body: ${text.slice(0, 200) || "(empty)"}`);
}

/**
 * Runs `body` on `sandboxId`'s `route` and yields its events as they come. A run Bay
 * answers with one JSON body instead (a background command) is one `result` event.
 */
export async function* execEvents<R extends keyof ExecBodies>(
  client: BayClient,
  sandboxId: string,
  route: R,
  body: ExecBodies[R],
  opts: { signal?: AbortSignal } = {},
): AsyncGenerator<ExecEvent, void> {
  const init = {
    params: { path: { id: sandboxId } },
    headers: { accept: "text/event-stream" },
    parseAs: "stream" as const,
    signal: opts.signal,
  };
  const r =
    route === "python"
      ? await client.POST("/v1/sandboxes/{id}/python/exec", { ...init, body: body as ExecBodies["python"] })
      : route === "shell"
        ? await client.POST("/v1/sandboxes/{id}/shell/exec", { ...init, body: body as ExecBodies["shell"] })
        : await client.POST("/v1/sandboxes/{id}/code/exec", { ...init, body: body as ExecBodies["code"] });
  const status = r.response.status;
  if (!r.response.ok) {
    // openapi-fetch parses an error body as JSON when it can, else gives its text.
    const error: unknown = r.error;
    const text = typeof error === "string" ? error : JSON.stringify(error ?? "");
    let value: unknown = error;
    try {
      if (typeof error === "string") value = JSON.parse(error);
    } catch {}
    throw refusal(status, value, text);
  }
  const kind = (r.response.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  const stream = r.data as ReadableStream<Uint8Array> | undefined;
  if (kind === "application/json") {
    const text = stream ? await new Response(stream).text() : "";
    try {
      yield { event: "result", data: JSON.parse(text) };
    } catch {
      throw badAnswer(status, `the answer is not JSON: ${text.slice(0, 200)}`);
    }
    return;
  }
  if (kind !== "text/event-stream" || !stream) {
    await stream?.cancel().catch(() => {});
    throw badAnswer(status, `expected an event stream, got ${kind || "no content type"}`);
  }
  yield* sseEvents(stream, status);
}

/** The events of a text/event-stream body (CRLF, LF or CR line ends); comments (`: ping`) are skipped. Cancels the body when left early. */
async function* sseEvents(stream: ReadableStream<Uint8Array>, status: number): AsyncGenerator<ExecEvent, void> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let name = "message";
  let data: string[] = [];
  let dataBytes = 0;
  const line = (text: string): ExecEvent | undefined => {
    if (text === "") {
      const joined = data.join("\n");
      const had = data.length > 0;
      const event = name;
      name = "message";
      data = [];
      dataBytes = 0;
      if (!had) return undefined;
      try {
        return { event, data: JSON.parse(joined) } as ExecEvent;
      } catch {
        throw badAnswer(status, `an event's data is not JSON: ${joined.slice(0, 200)}`);
      }
    }
    if (text.startsWith("event:")) name = text.slice(6).trim();
    else if (text.startsWith("data:")) {
      const value = text.slice(5).replace(/^ /, "");
      data.push(value);
      dataBytes += value.length;
      if (dataBytes > MAX_EVENT_BYTES) throw badAnswer(status, `an event's data is over ${MAX_EVENT_BYTES} bytes`);
    }
    return undefined;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        // A CR held at the end ended its line.
        const event = buffered.endsWith("\r") ? line(buffered.slice(0, -1)) : undefined;
        if (event) yield event;
        return;
      }
      buffered += decoder.decode(value, { stream: true });
      // A CR at the end may be the first half of a CRLF: it waits for the next chunk.
      for (let m = /\r\n|\r(?!$)|\n/.exec(buffered); m; m = /\r\n|\r(?!$)|\n/.exec(buffered)) {
        const event = line(buffered.slice(0, m.index));
        buffered = buffered.slice(m.index + m[0].length);
        if (event) yield event;
      }
      if (buffered.length > MAX_EVENT_BYTES) throw badAnswer(status, `an event-stream line is over ${MAX_EVENT_BYTES} bytes`);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
