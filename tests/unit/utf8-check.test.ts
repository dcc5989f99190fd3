import { expect, test } from "bun:test";
import { Utf8Check } from "../../src/protocol/utf8-check.ts";

/** The verdict of a fatal TextDecoder, the reference. */
function decoderSays(b: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

function checkSays(pieces: Uint8Array[]): boolean {
  const c = new Utf8Check();
  let ok = true;
  for (const p of pieces) ok = c.feed(p) && ok;
  return c.end() && ok;
}

const bytes = (...b: number[]) => new Uint8Array(b);

test("each edge of the well-formed table: overlongs, surrogates, past U+10FFFF, stray continuations, cut characters", () => {
  const cases: Array<[number[], boolean]> = [
    [[0x41], true],
    [[0x7f], true],
    [[0x80], false],
    [[0xc0, 0x80], false],
    [[0xc1, 0xbf], false],
    [[0xc2, 0x80], true],
    [[0xdf, 0xbf], true],
    [[0xe0, 0x9f, 0x80], false],
    [[0xe0, 0xa0, 0x80], true],
    [[0xed, 0x9f, 0xbf], true],
    [[0xed, 0xa0, 0x80], false],
    [[0xee, 0x80, 0x80], true],
    [[0xef, 0xbb, 0xbf], true],
    [[0xf0, 0x8f, 0xbf, 0xbf], false],
    [[0xf0, 0x90, 0x80, 0x80], true],
    [[0xf4, 0x8f, 0xbf, 0xbf], true],
    [[0xf4, 0x90, 0x80, 0x80], false],
    [[0xf5, 0x80, 0x80, 0x80], false],
    [[0xff], false],
    [[0xe2, 0x82], false],
    [[0xe2, 0x82, 0x41], false],
  ];
  for (const [b, ok] of cases) {
    expect(decoderSays(bytes(...b))).toBe(ok);
    expect(checkSays([bytes(...b)])).toBe(ok);
  }
});

test("the same verdict as a fatal TextDecoder on random bytes, wherever they are cut", () => {
  let seed = 0x2545f491;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  // Mostly whole characters of every width, edge ones included, with a stray byte now and then.
  const chars = ["A", "\u007f", "\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\ufeff", "\uffff", "\u{10000}", "\u{10ffff}"].map((c) =>
    new TextEncoder().encode(c),
  );
  const strays = [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff];
  let valid = 0;
  for (let n = 0; n < 4000; n++) {
    const parts: number[] = [];
    for (let k = 1 + (rand() % 6); k > 0; k--) {
      if (rand() % 8 === 0) parts.push(strays[rand() % strays.length]!);
      else parts.push(...chars[rand() % chars.length]!);
    }
    const b = new Uint8Array(parts);
    const want = decoderSays(b);
    if (want) valid++;
    for (let cut = 0; cut <= b.length; cut++) expect(checkSays([b.subarray(0, cut), b.subarray(cut)])).toBe(want);
    expect(checkSays(Array.from(b, (x) => bytes(x)))).toBe(want);
  }
  expect(valid).toBeGreaterThan(1000);
  expect(valid).toBeLessThan(3500);
});

test("real text of every width is valid, its non-ASCII bytes counted; a failure stays", () => {
  const text = new TextEncoder().encode("aé€😀 Привет 你好");
  const c = new Utf8Check();
  for (const b of text) expect(c.feed(bytes(b))).toBe(true);
  expect(c.end()).toBe(true);
  expect(c.nonAscii).toBe(text.filter((b) => b >= 0x80).length);
  const bad = new Utf8Check();
  expect(bad.feed(bytes(0xff))).toBe(false);
  expect(bad.feed(bytes(0x41))).toBe(false);
  expect(bad.end()).toBe(false);
});
