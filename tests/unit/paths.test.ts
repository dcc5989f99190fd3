/** Workspace path rules: what normalises to what, and what is refused as invalid_path. */
import { describe, expect, test } from "bun:test";
import { MAX_PATH_BYTES, MAX_PATH_DEPTH, normalizeWorkspacePath, shownPath } from "../../src/bay/domain/paths.ts";
import { BayError } from "../../src/bay/errors.ts";

/** A path of exactly MAX_PATH_BYTES bytes, every segment within 255 bytes. */
const LONGEST = [...Array<string>(14).fill("x".repeat(255)), "y".repeat(86), "z".repeat(84), "w".repeat(84)].join("/");

const ACCEPTED: Array<[string, string]> = [
  ["a.txt", "a.txt"],
  ["dir/sub/file.py", "dir/sub/file.py"],
  [".", "."],
  ["./", "."],
  ["./a", "a"],
  ["a/./b", "a/b"],
  ["a//b", "a/b"],
  ["a/", "a"],
  ["a/../b", "b"],
  ["a/b/../../c", "c"],
  ["a/..", "."],
  ["..foo", "..foo"],
  ["foo..", "foo.."],
  ["...", "..."],
  ["naïve ünïcode/文件.txt", "naïve ünïcode/文件.txt"],
  ["with space.txt", "with space.txt"],
  ["100%.txt", "100%.txt"],
  ["x".repeat(255), "x".repeat(255)],
  ["é".repeat(127), "é".repeat(127)], // 254 bytes
  [LONGEST, LONGEST], // exactly MAX_PATH_BYTES
  [`${"d/".repeat(127)}f`, `${"d/".repeat(127)}f`], // exactly MAX_PATH_DEPTH segments
  [`${"d/".repeat(200)}${"../".repeat(100)}f`, `${"d/".repeat(100)}f`], // deep only before normalising
];

const REFUSED: Array<[string, string]> = [
  ["", "empty"],
  ["/etc/passwd", "absolute"],
  ["/", "absolute root"],
  ["~/x", "home-relative"],
  ["..", "parent"],
  ["../x", "parent escape"],
  ["a/../../x", "escape after descent"],
  ["a/b/../../../x", "deeper escape"],
  ["./../x", "escape after ."],
  ["a\u0000b", "NUL"],
  ["a\nb", "newline"],
  ["a\tb", "tab"],
  ["a\u001fb", "unit separator"],
  ["a\u007fb", "DEL"],
  ["a\\b", "backslash"],
  ["..\\x", "backslash escape"],
  ["%2e%2e/x", "encoded dots"],
  ["%2E%2E%2Fx", "encoded dots upper-case"],
  ["a%2fb", "encoded slash"],
  ["a%5cb", "encoded backslash"],
  ["a%00b", "encoded NUL"],
  ["x".repeat(256), "segment over 255"],
  [`a/${"x".repeat(256)}/b`, "inner segment over 255"],
  ["é".repeat(200), "segment of 200 characters but 400 bytes"],
  [`a/${"文".repeat(86)}`, "segment of 86 characters but 258 bytes"],
  ["a/".repeat(2049), "path over 4096"],
  [`${LONGEST}x`, "one byte over MAX_PATH_BYTES"],
  [`${LONGEST.slice(0, -1)}é`, "one byte over MAX_PATH_BYTES by a two-byte character"],
  [`${"d/".repeat(128)}f`, "one segment over MAX_PATH_DEPTH"],
  [Array(2000).fill("a").join("/"), "2,000 segments"],
  ["x\uD800y", "lone high surrogate"],
  ["x\uDC00", "lone low surrogate"],
  ["\uDC00\uD800", "surrogates in the wrong order"],
];

describe("normalizeWorkspacePath", () => {
  test("the longest accepted path is exactly MAX_PATH_BYTES, the deepest MAX_PATH_DEPTH segments", () => {
    expect(Buffer.byteLength(LONGEST)).toBe(MAX_PATH_BYTES);
    expect(`${"d/".repeat(127)}f`.split("/")).toHaveLength(MAX_PATH_DEPTH);
  });

  test("a pair of surrogates (one character outside the BMP) is accepted", () => {
    expect(normalizeWorkspacePath("emoji-\u{1F600}.txt")).toBe("emoji-\u{1F600}.txt");
  });

  test.each(ACCEPTED)("accepts %p as %p", (input, expected) => {
    expect(normalizeWorkspacePath(input)).toBe(expected);
  });

  test.each(REFUSED)("refuses %p (%s) with invalid_path", (input) => {
    let thrown: unknown;
    try {
      normalizeWorkspacePath(input);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(BayError);
    expect((thrown as BayError).code).toBe("invalid_path");
    expect((thrown as BayError).status).toBe(400);
  });

  test("a refused path is echoed back truncated, never whole", () => {
    const long = "a/".repeat(3000);
    try {
      normalizeWorkspacePath(long);
      throw new Error("expected invalid_path");
    } catch (e) {
      const details = (e as BayError).details as { path: string; reason: string };
      expect(details.path.length).toBeLessThanOrEqual(256);
      expect(details.reason).toContain(String(MAX_PATH_BYTES));
    }
  });

  test("normalising is idempotent", () => {
    for (const [input] of ACCEPTED) {
      const once = normalizeWorkspacePath(input);
      expect(normalizeWorkspacePath(once)).toBe(once);
    }
  });
});

test("an error shows at most 256 UTF-16 units of a sent path, never half a surrogate pair (review s40, F2)", () => {
  const emojiAt255 = `${"a".repeat(255)}😀tail`;
  expect(shownPath(emojiAt255)).toBe("a".repeat(255));
  expect(shownPath(emojiAt255).isWellFormed()).toBe(true);
  const emojiAt254 = `${"a".repeat(254)}😀tail`;
  expect(shownPath(emojiAt254)).toBe(`${"a".repeat(254)}😀`);
  expect(shownPath("a".repeat(300))).toHaveLength(256);
  expect(shownPath("short/path/")).toBe("short/path/");
});
