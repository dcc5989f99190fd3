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

/** A call Bay refused before the run started (not found, validation, a full queue): its status and error body. */
export class BayRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: Schemas["ErrorBody"],
  ) {
    super(`${status} ${body.error.code}: ${body.error.message}`);
    this.name = "BayRequestError";
  }
}

/** Runs `body` on `sandboxId`'s `route` and yields its events as they come. */
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
  if (!r.response.ok || !r.data) {
    const text = r.data ? await new Response(r.data as ReadableStream).text() : "";
    let parsed: Schemas["ErrorBody"];
    try {
      parsed = (r.error ?? JSON.parse(text)) as Schemas["ErrorBody"];
    } catch {
      parsed = { error: { code: "internal_error", message: text || r.response.statusText, details: {}, request_id: "" } } as never;
    }
    throw new BayRequestError(r.response.status, parsed);
  }
  yield* sseEvents(r.data as ReadableStream<Uint8Array>);
}

/** The events of a text/event-stream body; comments (`: ping`) are skipped. Cancels the body when left early. */
async function* sseEvents(stream: ReadableStream<Uint8Array>): AsyncGenerator<ExecEvent, void> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let name = "message";
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let nl = buffered.indexOf("\n");
      while (nl !== -1) {
        const line = buffered.slice(0, nl).replace(/\r$/, "");
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
        if (line === "") {
          if (data.length > 0) yield { event: name, data: JSON.parse(data.join("\n")) } as ExecEvent;
          name = "message";
          data = [];
        } else if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
