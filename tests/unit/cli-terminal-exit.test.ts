/** `bay sandbox shell`'s exit status from the terminal's close reason (src/bay/cli/terminal-attach.ts). */
import { expect, test } from "bun:test";
import { exitStatus } from "../../src/bay/cli/terminal-attach.ts";

test.each([
  ['{"exit_code":0,"signal":null}', 0],
  ['{"exit_code":3,"signal":null}', 3],
  ['{"exit_code":255,"signal":null}', 255],
  ['{"exit_code":null,"signal":"SIGHUP"}', 129],
  ['{"exit_code":null,"signal":"SIGKILL"}', 137],
])("%s → %d", (reason, status) => {
  expect(exitStatus(reason)).toBe(status);
});

test.each([
  ['{"exit_code":256}'],
  ['{"exit_code":-1}'],
  ['{"exit_code":1e9}'],
  ['{"exit_code":2.5}'],
  ['{"exit_code":"3"}'],
  ['{"signal":"__proto__"}'],
  ['{"signal":"constructor"}'],
  ['{"signal":"SIGNOPE"}'],
  ["null"],
  ["not json"],
  [""],
])("a reason a shell's end cannot give (%s) → 1", (reason) => {
  expect(exitStatus(reason)).toBe(1);
});
