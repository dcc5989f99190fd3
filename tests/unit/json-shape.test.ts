/**
 * The shape of a JSON body, judged before it is parsed (src/protocol/json-shape.ts):
 * the limits, strings whatever they hold, the same verdict however the text is cut,
 * and each message of a Connect stream judged on its own.
 */
import { describe, expect, test } from "bun:test";
import { COMPRESSED, EnvelopedMessages } from "../../src/protocol/enveloped-messages.ts";
import { JsonShape, jsonShapeRefusal, MAX_JSON_DEPTH, MAX_JSON_VALUES } from "../../src/protocol/json-shape.ts";

/** Each message of a stream judged by a JsonShape of its own; a compressed one is not text. */
const enveloped = () =>
  new EnvelopedMessages((flags) => {
    const shape = new JsonShape();
    return (flags & COMPRESSED) === 0 ? { feed: (b) => shape.feed(b), end() {} } : { feed() {}, end() {} };
  });

const enc = (s: string) => new TextEncoder().encode(s);
const verdict = (feed: () => void): string | null => {
  try {
    feed();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
};

describe("one body", () => {
  test("nesting: MAX_JSON_DEPTH levels pass, one more is refused, however the brackets are mixed", () => {
    const nest = (n: number) => '[{"a":'.repeat(n / 2) + "1" + "}]".repeat(n / 2);
    expect(jsonShapeRefusal(enc(nest(MAX_JSON_DEPTH)))).toBeNull();
    expect(jsonShapeRefusal(enc(`[${nest(MAX_JSON_DEPTH)}]`))).toBe(`the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`);
    // Depth is depth, not a count of brackets: siblings at one level pass.
    expect(jsonShapeRefusal(enc(`[${Array(500).fill("[[1]]").join(",")}]`))).toBeNull();
  });

  test("values: strings, containers, elements and members count; past MAX_JSON_VALUES refused", () => {
    expect(
      jsonShapeRefusal(
        enc(
          `[${Array(MAX_JSON_VALUES / 2)
            .fill("1")
            .join(",")}]`,
        ),
      ),
    ).toBeNull();
    expect(
      jsonShapeRefusal(
        enc(
          `[${Array(MAX_JSON_VALUES + 2)
            .fill("1")
            .join(",")}]`,
        ),
      ),
    ).toBe(`the JSON body holds more than ${MAX_JSON_VALUES} values`);
    const keys = `{${Array.from({ length: MAX_JSON_VALUES }, (_, i) => `"k${i}":1`).join(",")}}`;
    expect(jsonShapeRefusal(enc(keys))).toContain("values");
    expect(jsonShapeRefusal(enc(`[${Array(MAX_JSON_VALUES).fill("[]").join(",")}]`))).toContain("values");
    // 1,024 environment variables (the most a call may set) are far inside.
    const env = Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`VAR_${i}`, "x".repeat(60)]));
    expect(jsonShapeRefusal(enc(JSON.stringify({ code: "1", env })))).toBeNull();
  });

  test("what a string holds is never structure: brackets, commas, quotes and backslashes escaped any way", () => {
    const inside = ["[[[[{{{{,,,,:::", '\\"[', "\\\\", '\\\\\\"{', "é[ü{", "\\u005b"];
    for (const s of inside) {
      const body = JSON.stringify({ code: s.repeat(MAX_JSON_VALUES) });
      expect({ s, r: jsonShapeRefusal(enc(body)) }).toEqual({ s, r: null });
    }
    // A long string costs nothing like its length in values.
    expect(jsonShapeRefusal(enc(JSON.stringify({ code: "x".repeat(2 * 1024 * 1024) })))).toBeNull();
  });

  test("the same verdict however the text is cut, escapes split included", () => {
    const bodies = [
      JSON.stringify({ a: 'x\\"y\\\\', b: ['\\\\\\"', { c: '"[{' }], d: "\\" }),
      `[${"[".repeat(MAX_JSON_DEPTH)}"\\\\"${"]".repeat(MAX_JSON_DEPTH)}]`,
      `{"s":"${'\\"'.repeat(40)}","t":[${"1,".repeat(50)}1]}`,
    ];
    for (const text of bodies) {
      const b = enc(text);
      const whole = jsonShapeRefusal(b);
      for (let cut = 0; cut <= b.length; cut++) {
        const s = new JsonShape();
        expect({ cut, r: verdict(() => (s.feed(b.subarray(0, cut)), s.feed(b.subarray(cut)))) }).toEqual({ cut, r: whole });
      }
      // One byte at a time.
      const s = new JsonShape();
      expect(
        verdict(() => {
          for (let i = 0; i < b.length; i++) s.feed(b.subarray(i, i + 1));
        }),
      ).toBe(whole);
    }
  });
});

describe("a Connect stream", () => {
  const envelope = (text: string, flags = 0) => {
    const data = enc(text);
    const out = new Uint8Array(5 + data.length);
    out[0] = flags;
    new DataView(out.buffer).setUint32(1, data.length);
    out.set(data, 5);
    return out;
  };
  const deep = "[".repeat(MAX_JSON_DEPTH + 1) + "]".repeat(MAX_JSON_DEPTH + 1);

  test("each message is judged on its own; headers whose bytes look like brackets are no structure", () => {
    const ok = JSON.stringify({ data: "x".repeat(0x5b5b) });
    const many = Buffer.concat(
      Array.from({ length: 20 }, () =>
        envelope(
          `[${Array(MAX_JSON_VALUES / 4)
            .fill("1")
            .join(",")}]`,
        ),
      ),
    );
    for (const stream of [Buffer.concat([envelope(ok), envelope(ok)]), many]) {
      const s = enveloped();
      expect(verdict(() => s.feed(stream))).toBeNull();
    }
    const bad = Buffer.concat([envelope(ok), envelope(deep)]);
    for (let cut = 0; cut <= bad.length; cut += 7) {
      const s = enveloped();
      expect(verdict(() => (s.feed(bad.subarray(0, cut)), s.feed(bad.subarray(cut))))).toContain("nests deeper");
    }
  });

  test("a compressed message is not read as text", () => {
    const s = enveloped();
    expect(verdict(() => s.feed(envelope(deep, 0x01)))).toBeNull();
  });
});
