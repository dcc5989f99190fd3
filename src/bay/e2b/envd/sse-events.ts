/**
 * Reads the event streams Bay relays from a Ship (`event: <name>` and one
 * `data: <json>` line per event, comments as keepalives) as parsed events.
 * Bounded: an event larger than `maxEventBytes` fails the stream.
 */
import { fairTurn } from "../../../protocol/fair-turn.ts";
import { BayError } from "../../errors.ts";

export interface StreamEvent {
  event: string;
  data: unknown;
}

const MAX_EVENT_BYTES = 4 * 1024 * 1024;

/**
 * `stop`: aborting it cancels the body, so a read that is waiting ends now. A consumer
 * that leaves while the next event is being read (withKeepalive, at a keepalive) needs it:
 * an async generator's `return()` waits for that read, which on a quiet stream may
 * never come.
 */
export async function* readEvents(
  body: ReadableStream<Uint8Array>,
  maxEventBytes = MAX_EVENT_BYTES,
  stop?: AbortSignal,
): AsyncIterable<StreamEvent> {
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  if (stop?.aborted) cancel();
  stop?.addEventListener("abort", cancel, { once: true });
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      // The read is asked for first, so the body keeps coming while this relay waits for its turn.
      const read = reader.read();
      const turn = fairTurn();
      if (turn) {
        // A body that fails meanwhile fails this read: handled below, not an unhandled rejection now.
        read.catch(() => {});
        await turn;
      }
      const { done, value } = await read;
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
        }
        if (data === "") continue; // a comment: keepalive
        try {
          yield { event, data: JSON.parse(data) };
        } catch {
          throw new BayError("ship_error", "the sandbox runtime sent a malformed event");
        }
      }
      if (buf.length > maxEventBytes) throw new BayError("ship_error", "the sandbox runtime sent an oversized event");
    }
  } finally {
    stop?.removeEventListener("abort", cancel);
    await reader.cancel().catch(() => {});
  }
}
