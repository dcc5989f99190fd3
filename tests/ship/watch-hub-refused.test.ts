/**
 * The hub's side of walking a refused directory again (WatchHub.refuse), against the
 * real inotify and real directories: the attribute change that makes an entry due
 * survives another watch of its holder, a directory moved over a refused one takes
 * its entry away, and a retry that finds nothing there keeps the entry for the move
 * that says where it went (review s65). The refusal itself needs a user who may not
 * read the directory: tests/e2e/interactive-watch.test.ts has it, in a real sandbox.
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, realpathSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RETRY_SPACING_MS } from "../../src/ship/watch/refused-dirs.ts";
import { type HubSubscriber, WatchHub } from "../../src/ship/watch/watch-hub.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A subscriber that records the directories handed back to it, answering each with `answer()`. */
function subscriber(answer: () => "absent" | undefined = () => undefined) {
  const retries: string[] = [];
  const sub: HubSubscriber = {
    onChange() {},
    onOverflow() {},
    onGone() {},
    onSelfMoved() {},
    onRetry(dir) {
      retries.push(dir);
      return answer();
    },
  };
  return { sub, retries };
}

/** A holder `h` with a directory `L` in it, `h` watched by `sub` and `L` refused for it (through the holder's descriptor, as the walk does). */
function setup(sub: HubSubscriber) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "bay-refused-")));
  const hub = new WatchHub(10);
  cleanups.push(() => {
    hub.close();
    rmSync(root, { recursive: true, force: true });
  });
  const holder = join(root, "h");
  mkdirSync(join(holder, "L"), { recursive: true });
  hub.add(holder, sub);
  const fd = openSync(holder, 0o10000000 | 0o200000 | 0o400000);
  try {
    hub.refuse(`/proc/self/fd/${fd}`, "L", sub);
  } finally {
    closeSync(fd);
  }
  return { hub, holder };
}

/** A directory and a hub polled by hand only (its timer never fires within a test). */
function byHand() {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "bay-refused-")));
  const hub = new WatchHub(3_600_000);
  cleanups.push(() => {
    hub.close();
    rmSync(root, { recursive: true, force: true });
  });
  return { root, hub };
}

/** Past a retry's spacing, with the hub's own polls in between. */
const settle = () => Bun.sleep(RETRY_SPACING_MS + 150);

test("an attribute change on a refused directory hands it back; none comes without one", async () => {
  const { sub, retries } = subscriber();
  const { holder } = setup(sub);
  await settle();
  expect(retries).toEqual([]);
  chmodSync(join(holder, "L"), 0o755);
  await settle();
  expect(retries).toEqual([join(holder, "L")]);
});

test("another watch of the holder, added after the refusal, leaves its attribute changes on (review s65 LOW-1)", async () => {
  const { sub, retries } = subscriber();
  const other = subscriber();
  const { hub, holder } = setup(sub);
  hub.add(holder, other.sub);
  chmodSync(join(holder, "L"), 0o700);
  await settle();
  expect(retries).toEqual([join(holder, "L")]);
  expect(other.retries).toEqual([]);
});

test("a directory moved over a refused one takes its entry away: no retry walks it again (review s65 LOW-2)", async () => {
  const { sub, retries } = subscriber();
  const { hub, holder } = setup(sub);
  mkdirSync(join(holder, "X"));
  hub.add(join(holder, "X"), sub); // as a recursive watch does with a directory that appears
  renameSync(join(holder, "X"), join(holder, "L")); // over the empty L: no delete of L is reported
  await settle();
  chmodSync(join(holder, "L"), 0o700);
  await settle();
  expect(retries).toEqual([]);
});

test("a retry that finds nothing there keeps the entry, and the move that follows takes it where it went (review s65 LOW-3)", async () => {
  let first = true;
  const { sub, retries } = subscriber(() => {
    if (!first) return undefined;
    first = false;
    return "absent";
  });
  const { holder } = setup(sub);
  chmodSync(join(holder, "L"), 0o700);
  await settle();
  expect(retries).toEqual([join(holder, "L")]);
  renameSync(join(holder, "L"), join(holder, "M"));
  await settle();
  expect(retries).toEqual([join(holder, "L"), join(holder, "M")]);
});

test("an entry recorded while its directory's creation is still queued survives that creation, and follows the move after it (review s67)", async () => {
  const { sub, retries } = subscriber();
  const { root, hub } = byHand(); // the creation stays queued while the walk refuses it
  hub.add(root, sub);
  mkdirSync(join(root, "L"));
  const fd = openSync(root, 0o10000000 | 0o200000 | 0o400000);
  try {
    hub.refuse(`/proc/self/fd/${fd}`, "L", sub);
  } finally {
    closeSync(fd);
  }
  renameSync(join(root, "L"), join(root, "M"));
  hub.poll(); // the creation of L, then its move to M
  await Bun.sleep(RETRY_SPACING_MS + 50);
  hub.poll();
  expect(retries).toEqual([join(root, "M")]);
});

test("an entry a walk recorded for a directory whose move onto that name is still queued survives the move (review s68)", async () => {
  const { sub, retries } = subscriber();
  const { root, hub } = byHand(); // the move stays queued while the walk refuses its result
  hub.add(root, sub);
  mkdirSync(join(root, "X"));
  renameSync(join(root, "X"), join(root, "L"));
  const fd = openSync(root, 0o10000000 | 0o200000 | 0o400000);
  try {
    hub.refuse(`/proc/self/fd/${fd}`, "L", sub);
  } finally {
    closeSync(fd);
  }
  hub.poll(); // the creation of X, then its move to L
  chmodSync(join(root, "L"), 0o700);
  hub.poll();
  await Bun.sleep(RETRY_SPACING_MS + 50);
  hub.poll();
  expect(retries).toEqual([join(root, "L")]);
});

test("a subscriber that ended gets nothing back; a holder nobody watches is not followed", async () => {
  const { sub, retries } = subscriber();
  const { hub, holder } = setup(sub);
  hub.forget(sub);
  chmodSync(join(holder, "L"), 0o700);
  await settle();
  expect(retries).toEqual([]);
  const unwatched = join(holder, "L");
  mkdirSync(join(unwatched, "deep"));
  const fd = openSync(unwatched, 0o10000000 | 0o200000 | 0o400000);
  try {
    hub.refuse(`/proc/self/fd/${fd}`, "deep", sub);
  } finally {
    closeSync(fd);
  }
  chmodSync(join(unwatched, "deep"), 0o700);
  await settle();
  expect(retries).toEqual([]);
});
