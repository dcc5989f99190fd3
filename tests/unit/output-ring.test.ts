/** The output ring of a background process: one offset sequence for both streams, the newest bytes kept, gaps reported exactly. */
import { describe, expect, test } from "bun:test";
import { OutputRing } from "../../src/ship/shell/output-ring.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (r: ReturnType<OutputRing["read"]>) => r.chunks.map((c) => `${c.stream}:${new TextDecoder().decode(c.bytes)}@${c.offset}`);

describe("OutputRing", () => {
  test("stdout and stderr share one offset sequence, in the order they came", () => {
    const ring = new OutputRing(100);
    ring.push("stdout", bytes("ab"));
    ring.push("stderr", bytes("E"));
    ring.push("stdout", bytes("cd"));
    expect(text(ring.read(0))).toEqual(["stdout:ab@0", "stderr:E@2", "stdout:cd@3"]);
    expect(ring.read(0)).toMatchObject({ from: 0, skipped: 0, next: 5 });
    expect(text(ring.read(3))).toEqual(["stdout:cd@3"]);
    expect(text(ring.read(1, 2))).toEqual(["stdout:b@1", "stderr:E@2"]);
    expect(ring.read(5)).toMatchObject({ from: 5, skipped: 0, chunks: [], next: 5 });
  });

  test("past its capacity it keeps the newest bytes; a reader behind it learns exactly what it missed", () => {
    const ring = new OutputRing(10);
    for (let i = 0; i < 7; i++) ring.push(i % 2 ? "stderr" : "stdout", bytes(String(i).repeat(3)));
    expect(ring.length).toBe(21);
    expect(ring.start).toBe(11);
    expect(ring.dropped).toBe(11);
    const r = ring.read(4);
    expect(r).toMatchObject({ from: 11, skipped: 7, next: 21 });
    expect(text(r)).toEqual(["stderr:3@11", "stdout:444@12", "stderr:555@15", "stdout:666@18"]);
    expect(new TextDecoder().decode(ring.streamBytes("stdout"))).toBe("444666");
    expect(new TextDecoder().decode(ring.streamBytes("stderr"))).toBe("3555");
    // A reader that is up to date is not told of a gap.
    expect(ring.read(15)).toMatchObject({ from: 15, skipped: 0 });
  });

  test("one write larger than the ring keeps its tail", () => {
    const ring = new OutputRing(4);
    ring.push("stdout", bytes("0123456789"));
    expect(ring.read(0)).toMatchObject({ from: 6, skipped: 6, next: 10 });
    expect(text(ring.read(0))).toEqual(["stdout:6789@6"]);
  });

  test("waiting readers wake on output and on close; one that leaves is not kept", async () => {
    const ring = new OutputRing(10);
    const woke = ring.waitFor(0);
    expect(ring.waiting).toBe(1);
    ring.push("stdout", bytes("x"));
    await woke;
    expect(ring.waiting).toBe(0);
    const leaving = new AbortController();
    const gone = ring.waitFor(1, leaving.signal);
    expect(ring.waiting).toBe(1);
    leaving.abort();
    await gone;
    expect(ring.waiting).toBe(0);
    const atEnd = ring.waitFor(1);
    ring.close();
    await atEnd;
    expect(ring.closed).toBe(true);
    ring.push("stdout", bytes("late"));
    expect(ring.length).toBe(1);
  });
});
