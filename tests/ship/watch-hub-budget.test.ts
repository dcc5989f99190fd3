/** A Ship's watches together hold at most its budget of directories (the host's inotify watches are shared by every sandbox). */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InotifyError } from "../../src/ship/watch/inotify.ts";
import { type HubSubscriber, WatchHub } from "../../src/ship/watch/watch-hub.ts";

let dir = "";
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("past the budget a new directory is refused as ENOSPC; one already watched is shared; a removed one frees its place", () => {
  dir = mkdtempSync(join(tmpdir(), "hub-budget-"));
  const dirs = ["a", "b", "c", "d"].map((n) => {
    mkdirSync(join(dir, n));
    return join(dir, n);
  });
  const hub = new WatchHub(1_000_000, 3);
  const subscriber = (): HubSubscriber => ({ onChange() {}, onOverflow() {}, onGone() {}, onSelfMoved() {} });
  const sub = subscriber();
  const other = subscriber();
  const wds = dirs.slice(0, 3).map((d) => hub.add(d, sub));
  let refused: unknown;
  try {
    hub.add(dirs[3]!, sub);
  } catch (e) {
    refused = e;
  }
  expect(refused).toBeInstanceOf(InotifyError);
  expect((refused as InotifyError).errno).toBe(28);
  // The same directory for another watch: the same descriptor, no new place taken.
  expect(hub.add(dirs[0]!, other)).toBe(wds[0]!);
  hub.remove(wds[1]!, sub);
  expect(typeof hub.add(dirs[3]!, sub)).toBe("number");
  for (const wd of [wds[0]!, wds[2]!]) hub.remove(wd, sub);
  hub.remove(wds[0]!, other);
});
