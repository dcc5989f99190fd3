/**
 * Bay's relay of a streamed exec (runtime/event-stream.ts), against an upstream it
 * controls byte by byte: whole events only, Ship's error event in Bay's error model,
 * an error event of Bay's own when the upstream breaks, ends early or runs past its
 * deadline, and no read from upstream before the client asks for more.
 */
import { describe, expect, test } from "bun:test";
import { zErrorBody } from "../../src/bay/api/generated/index.ts";
import { EventSplitter, relayEventStream } from "../../src/bay/runtime/event-stream.ts";
import { EventReader } from "../support/sse.ts";

const enc = new TextEncoder();
const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/** An upstream answer whose chunks the test pushes, ends or breaks; counts the reads asked of it. */
function upstream() {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  const state = { pulls: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        ctrl = c;
      },
      pull() {
        state.pulls++;
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  const res = new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8" } });
  return {
    res,
    state,
    push: (text: string) => ctrl.enqueue(enc.encode(text)),
    end: () => ctrl.close(),
    break: () => ctrl.error(new Error("connection reset")),
  };
}

const relay = (res: Response, deadline = new AbortController().signal, onFailure?: (e: unknown) => void) =>
  relayEventStream(res, { requestId: "req-1", deadline, timeoutMs: 31_000, ...(onFailure ? { onFailure } : {}) });

describe("EventSplitter", () => {
  test("cuts a stream into whole events at any chunking", () => {
    const text = `: stream open\n\n${event("stdout", { text: "a\n\nb" })}: ping\n\n${event("result", { ok: true })}`;
    const bytes = enc.encode(text);
    const want = [": stream open\n\n", event("stdout", { text: "a\n\nb" }), ": ping\n\n", event("result", { ok: true })];
    for (let i = 0; i <= bytes.length; i += 3) {
      for (let j = i; j <= bytes.length; j += 5) {
        const s = new EventSplitter();
        const got = [...s.push(bytes.subarray(0, i)), ...s.push(bytes.subarray(i, j)), ...s.push(bytes.subarray(j))];
        expect(got.map((e) => new TextDecoder().decode(e))).toEqual(want);
        expect(s.pending).toBe(0);
      }
    }
  });

  test("refuses an event past its limit instead of holding it", () => {
    const s = new EventSplitter(100);
    expect(() => s.push(enc.encode(`data: ${"x".repeat(200)}`))).toThrow();
  });
});

describe("relayEventStream", () => {
  test("passes events through unchanged and ends after the result", async () => {
    const up = upstream();
    const out = new EventReader(relay(up.res));
    up.push(": stream open\n\n");
    up.push(event("stdout", { text: "hi\n" }).slice(0, 10));
    up.push(event("stdout", { text: "hi\n" }).slice(10));
    up.push(event("result", { success: true }));
    up.end();
    expect(await out.rest()).toEqual([
      { event: "stdout", data: { text: "hi\n" } },
      { event: "result", data: { success: true } },
    ]);
    expect(out.comments).toEqual(["stream open"]);
  });

  test("Ship's error event becomes Bay's error body: caller codes pass through, others are ship_error", async () => {
    for (const [ship, want] of [
      [
        { error: { code: "timeout", message: "timed out", details: { timeout: 1, output: "x" } } },
        { code: "timeout", details: { timeout: 1, output: "x" } },
      ],
      [
        { error: { code: "internal_error", message: "boom", details: {} } },
        { code: "ship_error", details: { reason: "bad_response", ship_code: "internal_error" } },
      ],
      ["not json at all", { code: "ship_error", details: { reason: "bad_response", ship_code: null } }],
    ] as const) {
      const up = upstream();
      const out = new EventReader(relay(up.res));
      up.push(typeof ship === "string" ? `event: error\ndata: ${ship}\n\n` : event("error", ship));
      up.end();
      const [last] = await out.rest();
      expect(last!.event).toBe("error");
      expect(zErrorBody.safeParse(last!.data).success).toBe(true);
      expect(last!.data.error).toMatchObject({ ...want, request_id: "req-1" });
    }
  });

  test("a connection broken mid-event ends with a ship_error event, never half an event", async () => {
    const up = upstream();
    const failures: unknown[] = [];
    const res = relay(up.res, undefined, (e) => failures.push(e));
    const reader = res.body!.getReader();
    up.push(event("stdout", { text: "one" }));
    let text = new TextDecoder().decode((await reader.read()).value);
    up.push('event: stdout\ndata: {"half');
    await Bun.sleep(10); // the relay takes the partial event in, and waits for its end
    up.break();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.startsWith(event("stdout", { text: "one" }))).toBe(true);
    expect(text).not.toContain("half");
    const last = JSON.parse(text.trim().split("\n").at(-1)!.slice(6));
    expect(last.error).toMatchObject({ code: "ship_error", request_id: "req-1", details: { reason: "connection_lost" } });
    expect(failures).toHaveLength(1);
  });

  test("an upstream that ends before its result, or past the deadline, ends with an error event", async () => {
    const early = upstream();
    const out = new EventReader(relay(early.res));
    early.push(event("stdout", { text: "x" }));
    early.end();
    const events = await out.rest();
    expect(events.at(-1)!.data.error).toMatchObject({ code: "ship_error", details: { reason: "connection_lost" } });

    const late = upstream();
    const deadline = new AbortController();
    const lateOut = new EventReader(relay(late.res, deadline.signal));
    late.push(event("stdout", { text: "y" }));
    expect((await lateOut.next())?.data).toEqual({ text: "y" });
    deadline.abort();
    late.break();
    const [last] = await lateOut.rest();
    expect(last!.data.error).toMatchObject({ code: "timeout", details: { timeout_ms: 31_000 } });
  });

  test("reads upstream only as the client reads (no buffering ahead), and a cancel reaches upstream", async () => {
    const up = upstream();
    const reader = relay(up.res).body!.getReader();
    for (let i = 0; i < 50; i++) up.push(event("stdout", { text: `${i}` }));
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe(event("stdout", { text: "0" }));
    await Bun.sleep(20);
    // One event delivered, at most one more read ahead by the stream machinery: the other 48 still wait upstream.
    expect(up.state.pulls).toBeLessThanOrEqual(2);
    await reader.cancel();
    expect(up.state.cancelled).toBe(true);
  });
});
