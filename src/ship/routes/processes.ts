import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import { errorEventBody, ShipError } from "../errors.ts";
import { checkFollow, followOutput, readPage } from "../shell/output-reader.ts";
import type { ProcessRegistry } from "../shell/process-registry.ts";
import { sseResponse, wantsEventStream } from "../sse.ts";
import { validate } from "../validation.ts";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes stdin data as sent; malformed base64 is a validation_error rather than silently partial bytes. */
function decodeData(data: string, encoding: "text" | "base64"): Uint8Array {
  if (encoding === "text") return Buffer.from(data, "utf8");
  if (!BASE64.test(data)) {
    throw new ShipError("validation_error", "data is not valid base64", { details: { issues: [{ path: "data", message: "not base64" }] } });
  }
  return Buffer.from(data, "base64");
}

/** A background process's output (JSON page or SSE follow), stdin and signals. */
export function processRoutes(deps: { processes: ProcessRegistry; maxStdinBytes: number }) {
  return new Hono()
    .get(ops.readProcessOutput.honoPath, validate("query", ops.readProcessOutput.query), (c) => {
      const { offset, encoding } = c.req.valid("query");
      const out = deps.processes.output(c.req.param("process_id"));
      if (!wantsEventStream(c.req.raw)) return c.json(readPage(out, offset, encoding));
      checkFollow(out, offset);
      const requestId = c.req.header("x-request-id") ?? "";
      return sseResponse(
        c.req.raw.signal,
        (sink) => followOutput(out, offset, encoding, sink),
        (e) => errorEventBody(e, requestId),
      );
    })
    .post(ops.writeProcessStdin.honoPath, validate("json", ops.writeProcessStdin.body), async (c) => {
      const body = c.req.valid("json");
      const bytes = decodeData(body.data, body.encoding);
      if (bytes.byteLength > deps.maxStdinBytes) {
        throw new ShipError("payload_too_large", `a stdin write may carry at most ${deps.maxStdinBytes} bytes`, {
          details: { limit: deps.maxStdinBytes, size: bytes.byteLength },
        });
      }
      const id = c.req.param("process_id");
      const item = await deps.processes.writeStdin(id, bytes, body.eof, body.timeout * 1000);
      return c.json({ process_id: item.process_id, written: item.written, stdin_open: item.stdin_open });
    })
    .post(ops.signalProcess.honoPath, validate("json", ops.signalProcess.body), (c) =>
      c.json(deps.processes.signal(c.req.param("process_id"), c.req.valid("json").signal)),
    );
}
