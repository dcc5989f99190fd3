/**
 * A stream relayed in JavaScript whose source already holds its data goes from chunk to chunk
 * in promise continuations alone; without fairTurn no timer or I/O of the process runs until it
 * ends (sixty such streams kept a Bay from reading any request for seconds).
 */
import { expect, test } from "bun:test";
import { readEvents } from "../../src/bay/e2b/envd/sse-events.ts";
import { fairTurn } from "../../src/protocol/fair-turn.ts";

const EVENTS = 20_000;

/** A Ship event stream with all its events already there. */
function bufferedEvents(): ReadableStream<Uint8Array> {
  const line = new TextEncoder().encode(`event: output\ndata: {"stream":"stdout","data":"${"x".repeat(200)}"}\n\n`);
  return new ReadableStream({
    start(c) {
      for (let i = 0; i < EVENTS; i++) c.enqueue(line);
      c.close();
    },
  });
}

test("readEvents: a relay of events already buffered lets a timer run before it ends", async () => {
  let seen = 0;
  let seenWhenTimerRan = -1;
  setTimeout(() => {
    seenWhenTimerRan = seen;
  }, 0);
  for await (const _ of readEvents(bufferedEvents())) seen++;
  expect(seen).toBe(EVENTS);
  // The timer ran while events were still coming (without the turns: only after the last one).
  expect(seenWhenTimerRan).toBeGreaterThanOrEqual(0);
  expect(seenWhenTimerRan).toBeLessThan(EVENTS);
});

test("fairTurn: nothing to wait for in a young turn; one shared wait once it is old", async () => {
  await new Promise((r) => setTimeout(r, 0));
  const first = fairTurn();
  if (first) await first; // a turn started before this test may be old already
  expect(fairTurn()).toBeUndefined();
  const until = performance.now() + 10;
  while (performance.now() < until) {}
  const a = fairTurn();
  const b = fairTurn();
  expect(a).toBeInstanceOf(Promise);
  expect(b).toBe(a);
  await a;
  expect(fairTurn()).toBeUndefined();
});
