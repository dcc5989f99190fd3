/**
 * The E2B interpreter's NDJSON answer (interpreter-stream.ts). A body that runs to its
 * end reads as the events say; one cancelled while its exec is silent (a client gone,
 * or one that stopped reading) cancels the Ship's event stream underneath at once, not
 * when the exec next prints or times out, so the owner's stream slot and the Ship call
 * are given back. It sends `{"type":"keepalive"}` while a run is
 * silent, as E2B's interpreter does (every 5 s there; a short interval here), and
 * only then: the lines of the run keep their order, none comes after the end (not
 * even while the Ship's stream takes its time to close), a cancel while silent still
 * settles, and a source failing between two pulls fails the stream instead of the
 * process.
 */
import { expect, test } from "bun:test";
import { cancellable, KEEPALIVE_LINE, ndjsonBody, ndjsonFromEvents } from "../../src/bay/e2b/interpreter-stream.ts";

const enc = new TextEncoder();
const RESULT = 'event: result\ndata: {"success":true,"error":null,"data":[],"execution_count":3}\n\n';

/** An exec's events: `first`, silence for `silentMs`, then `rest` (or an error; null: silence until cancelled). */
function execEvents(first: string, silentMs: number, rest: string | Error | null) {
  const seen = { cancelled: null as unknown };
  let sent = false;
  const source = new ReadableStream<Uint8Array>({
    start(ctl) {
      ctl.enqueue(enc.encode(first));
    },
    async pull(ctl) {
      if (sent || rest === null) return new Promise<void>(() => {});
      sent = true;
      await Bun.sleep(silentMs);
      if (rest instanceof Error) ctl.error(rest);
      else {
        ctl.enqueue(enc.encode(rest));
        ctl.close();
      }
    },
    cancel(reason) {
      seen.cancelled = reason ?? "cancelled";
    },
  });
  return { source, seen };
}

function body(source: ReadableStream<Uint8Array>, keepaliveMs?: number) {
  const events = cancellable(source);
  return ndjsonBody(ndjsonFromEvents(events.stream, keepaliveMs), events.cancel);
}

async function lines(stream: ReadableStream<Uint8Array>): Promise<Array<Record<string, unknown>>> {
  return (await new Response(stream).text())
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

test("cancelling the NDJSON body while the exec is silent cancels the event stream underneath and settles", async () => {
  const { source, seen } = execEvents('event: stdout\ndata: {"text":"hi"}\n\n', 0, null);
  const reader = body(source).getReader();
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

test("a silent run sends keepalives between its lines, none after its end", async () => {
  const { source } = execEvents('event: stdout\ndata: {"text":"a"}\n\n', 260, RESULT);
  const got = await lines(body(source, 50));
  const types = got.map((l) => l.type);
  expect(types[0]).toBe("stdout");
  expect(types.slice(-2)).toEqual(["number_of_executions", "end_of_execution"]);
  const middle = types.slice(1, -2);
  expect(middle.length).toBeGreaterThanOrEqual(3);
  expect(new Set(middle)).toEqual(new Set(["keepalive"]));
  expect(got[1]).toEqual({ ...KEEPALIVE_LINE });
});

test("a run that is never silent for the interval sends no keepalive", async () => {
  const { source } = execEvents('event: stdout\ndata: {"text":"a"}\n\n', 0, RESULT);
  const types = (await lines(body(source, 200))).map((l) => l.type);
  expect(types).toEqual(["stdout", "number_of_executions", "end_of_execution"]);
});

test("without an interval nothing is added (the /v1-style body as before)", async () => {
  const { source } = execEvents('event: stdout\ndata: {"text":"a"}\n\n', 120, RESULT);
  const types = (await lines(body(source))).map((l) => l.type);
  expect(types).toEqual(["stdout", "number_of_executions", "end_of_execution"]);
});

test("cancelled while silent, after keepalives went out: the source is cancelled and the cancel settles", async () => {
  const { source, seen } = execEvents('event: stdout\ndata: {"text":"a"}\n\n', 0, null);
  const reader = body(source, 30).getReader();
  const dec = new TextDecoder();
  expect(JSON.parse(dec.decode((await reader.read()).value)).type).toBe("stdout");
  expect(JSON.parse(dec.decode((await reader.read()).value))).toEqual({ ...KEEPALIVE_LINE });
  expect(JSON.parse(dec.decode((await reader.read()).value))).toEqual({ ...KEEPALIVE_LINE });
  const settled = await Promise.race([reader.cancel(new Error("client gone")).then(() => true), Bun.sleep(2_000).then(() => false)]);
  expect(settled).toBe(true);
  expect(seen.cancelled).toBeInstanceOf(Error);
});

test("a source that fails while no pull waits on it fails the stream, not the process", async () => {
  const { source } = execEvents('event: stdout\ndata: {"text":"a"}\n\n', 80, new Error("ship went away"));
  const reader = body(source, 20).getReader();
  expect(JSON.parse(new TextDecoder().decode((await reader.read()).value)).type).toBe("stdout");
  expect(JSON.parse(new TextDecoder().decode((await reader.read()).value)).type).toBe("keepalive");
  // The reader now stops pulling while the source fails underneath.
  await Bun.sleep(150);
  let failed: unknown = null;
  try {
    while (!(await reader.read()).done) {}
  } catch (e) {
    failed = e;
  }
  expect(String(failed)).toContain("ship went away");
});

test("no keepalive after the end line, however long the Ship's stream takes to close", async () => {
  // The result event arrives, then the stream underneath neither ends nor fails for 300 ms.
  let cancelled = false;
  const source = new ReadableStream<Uint8Array>({
    start(ctl) {
      ctl.enqueue(enc.encode(`event: stdout\ndata: {"text":"a"}\n\n${RESULT}`));
    },
    pull: () => Bun.sleep(300),
    cancel: async () => {
      await Bun.sleep(300);
      cancelled = true;
    },
  });
  const types = (await lines(body(source, 20))).map((l) => l.type);
  expect(types).toEqual(["stdout", "number_of_executions", "end_of_execution"]);
  expect(cancelled).toBe(true);
});
