/**
 * The `pretty` log format writes no control character a request put in a value
 * (an unauthenticated request's path is logged on "authentication failed"): ESC and
 * CSI sequences could clear the operator's screen or fake a line.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { createLogger } from "../../src/bay/logger.ts";

const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
let noColor: string | undefined;
beforeEach(() => {
  // The level's own color is a control sequence of the logger's: off, so every one left would be the caller's.
  noColor = process.env.NO_COLOR;
  process.env.NO_COLOR = "1";
});
afterEach(() => {
  if (noColor === undefined) delete process.env.NO_COLOR;
  else process.env.NO_COLOR = noColor;
});

function prettyLines(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger("info", (l) => lines.push(l), "pretty") };
}

/** The value of the line's last field, `key`, as written. */
function last(line: string, key: string): string {
  const at = line.lastIndexOf(` ${key}=`);
  expect(at).toBeGreaterThan(-1);
  return line.slice(at + key.length + 2);
}

test("control characters from a request (C0, DEL, C1 with CSI) are escaped, and the value reads back as it was", () => {
  const { lines, log } = prettyLines();
  const path = "/v1/sandboxes/\x1b[2J\x1b[1;31mALL-KEYS-REVOKED\x1b[0m\x07\x00\x7f\x9b31m\x85end";
  log.info("authentication failed", { reason: "missing", method: "GET", path });
  const line = lines[0]!;
  expect(line).not.toMatch(CONTROL);
  expect(line).toContain("reason=missing method=GET ");
  const shown = last(line, "path");
  expect(shown.startsWith('"')).toBe(true);
  expect(JSON.parse(shown)).toBe(path);
});

test("in a nested value and in the message too", () => {
  const { lines, log } = prettyLines();
  log.warn("odd \x1b]0;title\x07 message", { details: { name: "a\x9bb\x1bc" } });
  log.warn("list", { list: ["\x7f", "\n"] });
  expect(lines.join("")).not.toMatch(CONTROL);
  expect(lines[0]).toContain("odd \\u001b]0;title\\u0007 message");
  expect(JSON.parse(last(lines[0]!, "details"))).toEqual({ name: "a\x9bb\x1bc" });
  expect(JSON.parse(last(lines[1]!, "list"))).toEqual(["\x7f", "\n"]);
});

test("plain values stay bare, values with spaces quoted, as before", () => {
  const { lines, log } = prettyLines();
  log.info("sandbox started", { sandbox_id: "sb-1", path: "/v1/sandboxes/sb-1/exec", note: "two words", n: 3, ok: true, name: "é→✓" });
  const line = lines[0]!;
  // After the time (`12:00:01.234`).
  expect(line.slice(12)).toBe(' INFO  sandbox started  sandbox_id=sb-1 path=/v1/sandboxes/sb-1/exec note="two words" n=3 ok=true name=é→✓');
});
