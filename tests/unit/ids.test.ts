import { describe, expect, test } from "bun:test";
import { newId } from "../../src/bay/domain/ids.ts";

describe("newId", () => {
  test("has the prefix and a 24-character base32 body", () => {
    expect(newId("sandbox")).toMatch(/^sandbox-[0-9a-hjkmnp-tv-z]{24}$/);
  });

  test("ids minted in the same millisecond still sort in creation order", () => {
    const now = Date.now();
    const ids = Array.from({ length: 500 }, () => newId("ws", now));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("a later millisecond sorts after an earlier one", () => {
    const a = newId("sess", 1_000_000);
    const b = newId("sess", 1_000_001);
    expect(a < b).toBe(true);
  });
});
