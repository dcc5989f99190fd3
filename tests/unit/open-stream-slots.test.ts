/**
 * OpenStreamSlots: per-holder bounds, and takeAll (a sandbox host's visitor takes
 * one of its sandbox's slots and one of all visitors'): all or none, each
 * released once.
 */
import { describe, expect, test } from "bun:test";
import { OpenStreamSlots } from "../../src/bay/domain/open-stream-slots.ts";
import { BayError } from "../../src/bay/errors.ts";

const refusal = (f: () => unknown): BayError => {
  try {
    f();
  } catch (e) {
    if (e instanceof BayError) return e;
  }
  throw new Error("not refused");
};

describe("OpenStreamSlots", () => {
  test("take: bounded per holder, by its own max when given; the refusal names the scope; release counts once", () => {
    const slots = new OpenStreamSlots(2);
    const a = slots.take("alice");
    slots.take("alice");
    expect(refusal(() => slots.take("alice")).message).toContain("at most 2 streams, watches and terminals may be open at once per owner");
    expect(slots.take("bob")).toBeDefined();
    a.release();
    a.release();
    expect(slots.held("alice")).toBe(1);
    slots.take("all", "for everyone", 1);
    const e = refusal(() => slots.take("all", "for everyone", 1));
    expect(e.message).toContain("at most 1 streams, watches and terminals may be open at once for everyone");
    expect(e.details).toMatchObject({ reason: "open_streams", limit: 1 });
  });

  test("takeAll: one of each holder, or none (what it took before a full one is given back); release gives back each once", () => {
    const slots = new OpenStreamSlots(2);
    const holders = [
      { key: "sandbox", scope: "per sandbox" },
      { key: "all", scope: "for all", max: 3 },
    ];
    const first = slots.takeAll(holders);
    slots.takeAll(holders);
    // The sandbox's share is full: nothing of "all" is taken.
    expect(refusal(() => slots.takeAll(holders)).message).toContain("per sandbox");
    expect(slots.held("sandbox")).toBe(2);
    expect(slots.held("all")).toBe(2);
    // Another sandbox: its own share, until "all" is full; the sandbox slot it took first is given back.
    const other = [{ key: "other", scope: "per sandbox" }, holders[1]!];
    slots.takeAll(other);
    expect(refusal(() => slots.takeAll(other)).message).toContain("for all");
    expect(slots.held("other")).toBe(1);
    expect(slots.held("all")).toBe(3);
    first.release();
    first.release();
    expect(slots.held("sandbox")).toBe(1);
    expect(slots.held("all")).toBe(2);
  });
});
