/**
 * The E2B interpreter's NDJSON answer, cancelled while its exec is silent (a client
 * gone, or one that stopped reading): the Ship's event stream underneath is
 * cancelled at once, not when the exec next prints or times out, so the owner's
 * stream slot and the Ship call are given back.
 */
import { expect, test } from "bun:test";
import { cancellable, ndjsonBody, ndjsonFromEvents } from "../../src/bay/e2b/interpreter-stream.ts";

/** An exec's event stream: one stdout event, then silence until cancelled. */
function silentExec() {
  const seen = { cancelled: null as unknown };
  const source = new ReadableStream<Uint8Array>({
    start(ctl) {
      ctl.enqueue(new TextEncoder().encode('event: stdout\ndata: {"text":"hi"}\n\n'));
    },
    pull: () => new Promise<void>(() => {}),
    cancel(reason) {
      seen.cancelled = reason ?? "cancelled";
    },
  });
  return { source, seen };
}

test("cancelling the NDJSON body while the exec is silent cancels the event stream underneath and settles", async () => {
  const { source, seen } = silentExec();
  const events = cancellable(source);
  const reader = ndjsonBody(ndjsonFromEvents(events.stream), events.cancel).getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  expect(JSON.parse(first)).toMatchObject({ type: "stdout", text: "hi" });
  // A pull is now pending on the silent source.
  await Bun.sleep(20);
  const settled = await Promise.race([reader.cancel(new Error("client gone")).then(() => true), Bun.sleep(2_000).then(() => false)]);
  expect(settled).toBe(true);
  expect(seen.cancelled).toBeInstanceOf(Error);
});

test("a body that runs to its end reads as before", async () => {
  const text = 'event: stdout\ndata: {"text":"a"}\n\nevent: result\ndata: {"success":true,"error":null,"data":[],"execution_count":1}\n\n';
  const events = cancellable(new Response(text).body!);
  const lines = (await new Response(ndjsonBody(ndjsonFromEvents(events.stream), events.cancel)).text())
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  expect(lines).toEqual([
    { type: "stdout", text: "a", timestamp: expect.any(String) },
    { type: "number_of_executions", execution_count: 1 },
    { type: "end_of_execution" },
  ]);
});
