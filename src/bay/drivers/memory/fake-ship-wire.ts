/**
 * The fake Ship's wire format, as Ship's: request parts checked with the
 * protocol's schemas, Ship's error body (anything not Ship's own is
 * internal_error, logged), event streams, a streamed exec's events, and an
 * upload refused past its limit as it arrives.
 */
import type { z } from "zod";
import { BayError, ERROR_STATUS, type ErrorCode } from "../../errors.ts";
import type { FollowEvent } from "./fake-processes.ts";
import type { WatchEvent } from "./fake-watch.ts";

/** Ship's error codes; anything else leaves the fake as internal_error. */
const SHIP_CODES = new Set<ErrorCode>([
  "validation_error",
  "invalid_path",
  "unauthorized",
  "conflict",
  "file_not_found",
  "not_found",
  "conflict",
  "payload_too_large",
  "quota_exceeded",
  "internal_error",
  "timeout",
]);

/**
 * An exec's answer: JSON, or with `Accept: text/event-stream` the same run as
 * Ship's events, all at its end (the fake produces output only when a cell ends):
 * its output as one `stdout` event, then `result`, or an `error` event.
 */
export async function answerExec(req: Request, run: () => Promise<unknown>, log: (line: string) => void): Promise<Response> {
  if (!/\btext\/event-stream\b/i.test(req.headers.get("accept") ?? "")) return Response.json(await run());
  const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  let text = ": stream open\n\n";
  try {
    const result = (await run()) as { output?: string };
    if (result.output) text += event("stdout", { text: result.output });
    text += event("result", result);
  } catch (e) {
    text += event("error", errorBodyOf(e, log));
  }
  return new Response(text, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

/** An upload's bytes, refused past the limit as they arrive. */
export async function receiveUpload(req: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () => new BayError("payload_too_large", `upload is larger than ${limit} bytes`, { details: { limit } });
  if (Number(req.headers.get("content-length") ?? "0") > limit) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body?.getReader();
  for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
    size += r.value.byteLength;
    if (size > limit) {
      await reader!.cancel();
      throw tooLarge();
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks);
}

/** Ship's event stream: an opening comment, then one event per item; a failure ends it with an `error` event in Ship's error body. */
export function eventStream(events: AsyncGenerator<FollowEvent | WatchEvent>, log: (line: string) => void): Response {
  const enc = new TextEncoder();
  const frame = (event: string, data: unknown) => enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      ctrl.enqueue(enc.encode(": stream open\n\n"));
    },
    async pull(ctrl) {
      try {
        const next = await events.next();
        if (next.done) ctrl.close();
        else ctrl.enqueue(frame(next.value.event, next.value.data));
      } catch (e) {
        const res = errorResponse(e, log);
        ctrl.enqueue(frame("error", await res.json()));
        ctrl.close();
      }
    },
    async cancel() {
      await events.return(undefined);
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

/** A JSON body already read as text; malformed is Ship's validation_error. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BayError("validation_error", "malformed JSON body");
  }
}

/** The request's JSON body; malformed is Ship's validation_error. */
export async function jsonOf(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    throw new BayError("validation_error", "malformed JSON body");
  }
}

/** Checks a request part with the protocol's schema, failing as Ship's validator does. */
export function checked<S extends z.ZodType>(schema: S, value: unknown, target: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  const first = issues[0];
  throw new BayError("validation_error", first ? `invalid ${target}: ${first.path || "(root)"}: ${first.message}` : `invalid ${target}`, {
    details: { issues },
  });
}

/** Ship's error body for `e` (anything not Ship's own becomes internal_error, logged). */
function errorBodyOf(e: unknown, log: (line: string) => void) {
  const err = e instanceof BayError && SHIP_CODES.has(e.code) ? e : null;
  if (!err) log(`[ship] internal error: ${e instanceof Error ? e.message : String(e)}`);
  const code = err?.code ?? "internal_error";
  return { error: { code, message: err?.message ?? "internal error", details: err?.details ?? {} } };
}

/** Ship's error answer for `e`, with its code's status. */
export function errorResponse(e: unknown, log: (line: string) => void): Response {
  const body = errorBodyOf(e, log);
  return Response.json(body, { status: ERROR_STATUS[body.error.code] });
}
