/**
 * PollingWatchers' bounds on the in-memory driver (its fake watch lists the volume):
 * unread events past the cap stop the watcher with DataLoss after what it kept; a
 * watcher nobody polls is removed and gives its slot back; one whose sandbox is
 * deleted ends. The real Ship and the Connect calls are in
 * tests/e2e/e2b-polling-watchers.test.ts.
 */
import { afterEach, expect, test } from "bun:test";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DataPlaneCall } from "../../src/bay/e2b/envd/access.ts";
import type { EnvdCalls } from "../../src/bay/e2b/envd/envd-calls.ts";
import { filesystemService } from "../../src/bay/e2b/envd/filesystem-service.ts";
import { PollingWatchers, type PollingWatchersOptions } from "../../src/bay/e2b/envd/polling-watchers.ts";
import { pollUntil } from "../support/harness.ts";
import { within } from "../support/within.ts";
import { createMemoryBay, type MemoryBay } from "./support/memory-bay.ts";

const open: MemoryBay[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

async function setUp(o: Partial<PollingWatchersOptions> = {}) {
  const t = await createMemoryBay();
  open.push(t);
  const created = await t.json("POST", "/v1/sandboxes", { body: {} });
  const id = created.body.id as string;
  const sb = (await t.bay.deps.stores.sandboxes.get(id, Date.now()))!;
  const call: DataPlaneCall = { owner: sb.owner, sandboxId: id, requestId: "test", user: "user" };
  const watchers = new PollingWatchers({ watch: t.bay.deps.sandboxWatch, ...o });
  const write = async (path: string) =>
    expect((await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path, content: "x" } })).status).toBe(200);
  const slots = () => t.bay.deps.router.openStreams(sb.owner);
  return { t, id, call, watchers, write, slots };
}

const codeOf = (f: () => unknown): Code | string => {
  try {
    f();
    return "no error";
  } catch (e) {
    return e instanceof ConnectError ? e.code : String(e);
  }
};

test("past maxEvents unread the watcher stops: the events it kept, then DataLoss, then NotFound; its slot is back", async () => {
  const { call, watchers, write, slots } = await setUp({ maxEvents: 3 });
  const id = await watchers.create(call, ".", false, (p) => p);
  expect(slots()).toBe(1);
  for (let i = 0; i < 6; i++) await write(`f${i}.txt`);
  await pollUntil(slots, (n) => n === 0, 5_000, "the stopped watcher's slot");
  const kept = watchers.take(call, id);
  expect(kept).toHaveLength(3);
  expect(kept.every((e) => e.type === "created")).toBe(true);
  expect(codeOf(() => watchers.take(call, id))).toBe(Code.DataLoss);
  expect(codeOf(() => watchers.take(call, id))).toBe(Code.NotFound);
});

test("a watcher nobody polls for idleMs is removed and gives its slot back; polling keeps one alive", async () => {
  const { call, watchers, slots } = await setUp({ idleMs: 300 });
  const idle = await watchers.create(call, ".", false, (p) => p);
  const polled = await watchers.create(call, ".", false, (p) => p);
  expect(slots()).toBe(2);
  for (let i = 0; i < 8; i++) {
    await Bun.sleep(100);
    watchers.take(call, polled);
  }
  expect(codeOf(() => watchers.take(call, idle))).toBe(Code.NotFound);
  expect(watchers.take(call, polled)).toEqual([]);
  await pollUntil(slots, (n) => n === 1, 5_000, "the idle watcher's slot");
  watchers.remove(call, polled);
  await pollUntil(slots, (n) => n === 0, 5_000, "all slots");
  expect(watchers.size).toBe(0);
});

test("a watcher answers its own sandbox only, and ends (slot back) when its sandbox is deleted", async () => {
  const { t, id, call, watchers, slots } = await setUp();
  const w = await watchers.create(call, ".", false, (p) => p);
  expect(codeOf(() => watchers.take({ ...call, sandboxId: "sandbox-other" }, w))).toBe(Code.NotFound);
  expect(codeOf(() => watchers.remove({ ...call, sandboxId: "sandbox-other" }, w))).toBe(Code.NotFound);
  expect(watchers.take(call, w)).toEqual([]);
  expect((await t.json("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
  const ended = await pollUntil(
    () => codeOf(() => watchers.take(call, w)),
    (c) => c !== "no error",
    5_000,
    "the watcher's end",
  );
  expect(ended).toBe(Code.Unavailable);
  await pollUntil(slots, (n) => n === 0, 5_000, "slot given back");
  expect(watchers.size).toBe(0);
});

test("a caller gone before its watch is ready gets no watcher: nothing is kept, its slot is back", async () => {
  const { call, watchers, slots } = await setUp();
  const gone = new AbortController();
  gone.abort();
  const err = await watchers.create({ ...call, signal: gone.signal }, ".", false, (p) => p).catch((e) => e);
  expect(err).toMatchObject({ code: "timeout", details: { reason: "client_gone" } });
  expect(watchers.size).toBe(0);
  await pollUntil(slots, (n) => n === 0, 5_000, "the slot");
});

/** A watch whose events the test writes (Ship's event stream: ready, change, dropped); one stream per watch() call. */
function scriptedWatch() {
  const streams: Array<{ ctrl: ReadableStreamDefaultController<Uint8Array>; cancelled: boolean }> = [];
  const enc = new TextEncoder();
  const send = (event: string, data: unknown, i = streams.length - 1) =>
    streams[i]!.ctrl.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
  const watch = {
    watch: async () => {
      const s = { ctrl: null as unknown as ReadableStreamDefaultController<Uint8Array>, cancelled: false };
      streams.push(s);
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          s.ctrl = c;
          c.enqueue(enc.encode("event: ready\ndata: {}\n\n"));
        },
        cancel() {
          s.cancelled = true;
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  };
  return {
    watch: watch as never,
    send,
    end: (i: number) => streams[i]!.ctrl.close(),
    cancelled: (i = streams.length - 1) => streams[i]!.cancelled,
  };
}

const plainCall: DataPlaneCall = { owner: "o", sandboxId: "sandbox-s", requestId: "r", user: "user" };

/** envd's Filesystem service on a scripted watch, its calls run as `plainCall` (for WatchDir). */
function watchService(watch: ReturnType<typeof scriptedWatch>["watch"], watchers: PollingWatchers) {
  const calls = {
    async *stream<T>(_ctx: unknown, run: (call: DataPlaneCall) => AsyncIterable<T>) {
      yield* run(plainCall);
    },
  } as unknown as EnvdCalls;
  return filesystemService({ calls, info: {} as never, files: {} as never, watch, watchers });
}

test("names and types are bounded in characters too: past maxBytes the watcher stops with DataLoss after what it kept", async () => {
  const w = scriptedWatch();
  // Each event below is 10 + 7 characters: two fit, the third does not.
  const watchers = new PollingWatchers({ watch: w.watch, maxBytes: 40, eventChars: 0 });
  const id = await watchers.create(plainCall, ".", false, (p) => p);
  for (const name of ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"]) w.send("change", { type: "created", path: name });
  await pollUntil(
    () => w.cancelled(),
    (c) => c,
    2_000,
    "the stopped watch",
  );
  expect(watchers.take(plainCall, id).map((e) => e.name)).toEqual(["aaaaaaaaaa", "bbbbbbbbbb"]);
  expect(codeOf(() => watchers.take(plainCall, id))).toBe(Code.DataLoss);
  // A type string of any length from a Ship counts as well.
  const huge = await watchers.create(plainCall, ".", false, (p) => p);
  w.send("change", { type: "x".repeat(100), path: "a" });
  await pollUntil(
    () => w.cancelled(),
    (c) => c,
    2_000,
    "the second stopped watch",
  );
  expect(codeOf(() => watchers.take(plainCall, huge))).toBe(Code.DataLoss);
});

test("each kept event is charged its object's own heap too (eventChars, default 64): short names cannot pile up past the budgets (review s96 F1)", async () => {
  const w = scriptedWatch();
  // Each event below is 1 + 7 characters and 64 for itself: two fit in 200, the third does not.
  const watchers = new PollingWatchers({ watch: w.watch, maxBytes: 200 });
  const id = await watchers.create(plainCall, ".", false, (p) => p);
  for (const name of ["a", "b", "c"]) w.send("change", { type: "created", path: name });
  await pollUntil(
    () => w.cancelled(),
    (c) => c,
    2_000,
    "the stopped watch",
  );
  expect(watchers.keptBytes).toBe(144);
  expect(watchers.take(plainCall, id).map((e) => e.name)).toEqual(["a", "b"]);
  expect(codeOf(() => watchers.take(plainCall, id))).toBe(Code.DataLoss);
  expect(watchers.keptBytes).toBe(0);
});

test("changes Ship reports it dropped end the watcher with DataLoss, after the events before them", async () => {
  const w = scriptedWatch();
  const watchers = new PollingWatchers({ watch: w.watch });
  const id = await watchers.create(plainCall, ".", false, (p) => p);
  w.send("change", { type: "modified", path: "x" });
  w.send("dropped", { reason: "queue_full", count: 7 });
  await pollUntil(
    () => w.cancelled(),
    (c) => c,
    2_000,
    "the stopped watch",
  );
  expect(watchers.take(plainCall, id)).toEqual([{ name: "x", type: "modified" }]);
  expect(codeOf(() => watchers.take(plainCall, id))).toBe(Code.DataLoss);
});

test("an owner has at most maxPerOwner watchers, an ended one counting until it is taken or endedMs passes", async () => {
  const w = scriptedWatch();
  const watchers = new PollingWatchers({ watch: w.watch, maxPerOwner: 2, endedMs: 300 });
  const first = await watchers.create(plainCall, ".", false, (p) => p);
  await watchers.create(plainCall, ".", false, (p) => p);
  const quota = () =>
    watchers
      .create(plainCall, ".", false, (p) => p)
      .then(
        () => "created",
        (e) => e.code,
      );
  expect(await quota()).toBe("quota_exceeded");
  // Another owner is not held back.
  expect(await watchers.create({ ...plainCall, owner: "p" }, ".", false, (p) => p)).toBeString();
  // The first one's watch ends with an event unread: it still counts...
  w.send("change", { type: "created", path: "late" }, 0);
  w.end(0);
  await Bun.sleep(50);
  expect(await quota()).toBe("quota_exceeded");
  // ...until endedMs passes without a poll: then it is gone, and so is its event.
  await pollUntil(
    () => watchers.size,
    (n) => n === 2,
    2_000,
    "the ended watcher's removal",
  );
  expect(codeOf(() => watchers.take(plainCall, first))).toBe(Code.NotFound);
  expect(await quota()).toBe("created");
});

test("an ended watcher taken out (its last events, then its reason) frees its place at once", async () => {
  const w = scriptedWatch();
  const watchers = new PollingWatchers({ watch: w.watch, maxPerOwner: 1 });
  const id = await watchers.create(plainCall, ".", false, (p) => p);
  w.send("change", { type: "deleted", path: "d" });
  w.end(0);
  await Bun.sleep(50);
  expect(watchers.take(plainCall, id)).toEqual([{ name: "d", type: "deleted" }]);
  expect(codeOf(() => watchers.take(plainCall, id))).toBe(Code.Unavailable);
  expect(await watchers.create(plainCall, ".", false, (p) => p)).toBeString();
});

test("concurrent creates are counted while their watch starts: no more than maxPerOwner get through", async () => {
  const w = scriptedWatch();
  const watchers = new PollingWatchers({ watch: w.watch, maxPerOwner: 3 });
  const results = await Promise.all(
    Array.from({ length: 10 }, () =>
      watchers
        .create(plainCall, ".", false, (p) => p)
        .then(
          () => "created",
          (e) => e.code,
        ),
    ),
  );
  expect(results.filter((r) => r === "created")).toHaveLength(3);
  expect(results.filter((r) => r === "quota_exceeded")).toHaveLength(7);
  expect(watchers.size).toBe(3);
});

test("a short name in a deep directory counts its whole path (the name is a slice of it, and keeps it alive)", async () => {
  const w = scriptedWatch();
  const dir = "d".repeat(200);
  // Each event keeps a 202-character path for a 1-character name: two fit under 500, the third does not.
  const watchers = new PollingWatchers({ watch: w.watch, maxBytes: 500, eventChars: 0 });
  const id = await watchers.create(plainCall, dir, false, (p) => p.slice(dir.length + 1));
  for (const name of ["a", "b", "c"]) w.send("change", { type: "created", path: `${dir}/${name}` });
  await pollUntil(
    () => w.cancelled(),
    (c) => c,
    2_000,
    "the stopped watch",
  );
  expect(watchers.take(plainCall, id).map((e) => e.name)).toEqual(["a", "b"]);
  expect(codeOf(() => watchers.take(plainCall, id))).toBe(Code.DataLoss);
});

test("streaming WatchDir: changes Ship reports it dropped end the stream with DataLoss, after the events before them", async () => {
  const w = scriptedWatch();
  const service = watchService(w.watch, new PollingWatchers({ watch: w.watch }));
  const stream = service.watchDir!(
    { path: "/home/user", recursive: false } as never,
    { signal: new AbortController().signal, requestHeader: new Headers() } as never,
  ) as AsyncIterable<{ event: { case: string; value: { name?: string } } }>;
  const seen: string[] = [];
  let ended: unknown;
  const reading = (async () => {
    try {
      for await (const m of stream) {
        seen.push(m.event.case === "filesystem" ? `change ${m.event.value.name}` : m.event.case);
        if (seen.length === 2) w.send("dropped", { reason: "queue_full", count: 3 });
        if (seen.length === 1) w.send("change", { type: "modified", path: "x" });
      }
    } catch (e) {
      ended = e;
    }
  })();
  // Ship's stream stays open after `dropped`: the end must not wait for its next event.
  await within(2_000, "the stream's end", reading);
  expect(seen).toEqual(["start", "change x"]);
  expect(ended).toBeInstanceOf(ConnectError);
  expect((ended as ConnectError).code).toBe(Code.DataLoss);
  expect(w.cancelled()).toBe(true);
});

for (const reason of ["watch_limit", "unwatchable"])
  test(`a watch that reached its cap of directories or met one it may not read (${reason}) goes on for the ones it covers, polled or streamed`, async () => {
    const w = scriptedWatch();
    const watchers = new PollingWatchers({ watch: w.watch });
    const id = await watchers.create(plainCall, ".", true, (p) => p);
    w.send("dropped", { reason, count: null });
    w.send("change", { type: "created", path: "after" });
    await pollUntil(
      () => watchers.take(plainCall, id),
      (events) => events.length > 0,
      2_000,
      "the change after the cap",
    ).then((events) => expect(events).toEqual([{ name: "after", type: "created" }]));

    const service = watchService(w.watch, watchers);
    const ac = new AbortController();
    const stream = service.watchDir!(
      { path: "/home/user", recursive: true } as never,
      { signal: ac.signal, requestHeader: new Headers() } as never,
    ) as AsyncIterable<{
      event: { case: string; value: { name?: string } };
    }>;
    const seen: string[] = [];
    for await (const m of stream) {
      seen.push(m.event.case === "filesystem" ? `change ${m.event.value.name}` : m.event.case);
      if (seen.length === 1) {
        w.send("dropped", { reason, count: null });
        w.send("change", { type: "created", path: "still" });
      }
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(["start", "change still"]);
  });

test("all watchers of the process together keep at most maxTotalBytes: the one that would go over stops; what is taken or removed is let go", async () => {
  const w = scriptedWatch();
  const watchers = new PollingWatchers({ watch: w.watch, maxTotalBytes: 40, maxOwnerBytes: 40, eventChars: 0 });
  const alice: DataPlaneCall = { owner: "alice", sandboxId: "sandbox-a", requestId: "r", user: "user" };
  const bob: DataPlaneCall = { owner: "bob", sandboxId: "sandbox-b", requestId: "r", user: "user" };
  const a = await watchers.create(alice, ".", false, (p) => p);
  const b = await watchers.create(bob, ".", false, (p) => p);
  w.send("change", { type: "created", path: "a".repeat(23) }, 0); // 30 characters with its type
  await pollUntil(
    () => watchers.keptBytes,
    (n) => n === 30,
    2_000,
    "alice's event kept",
  );
  w.send("change", { type: "created", path: "b".repeat(13) }, 1); // 20: over the 40 of all
  await pollUntil(
    () => w.cancelled(1),
    (c) => c,
    2_000,
    "bob's watch stopped",
  );
  expect(codeOf(() => watchers.take(bob, b))).toBe(Code.DataLoss);
  expect(watchers.keptBytes).toBe(30);
  expect(watchers.take(alice, a)).toEqual([{ name: "a".repeat(23), type: "created" }]);
  expect(watchers.keptBytes).toBe(0);
  w.send("change", { type: "created", path: "c".repeat(13) }, 0);
  await pollUntil(
    () => watchers.keptBytes,
    (n) => n === 20,
    2_000,
    "room again",
  );
  watchers.remove(alice, a);
  expect(watchers.keptBytes).toBe(0);
});

test("one owner's watchers together keep at most maxOwnerBytes: its watcher that would go over stops, another owner's keep theirs (review s94 F1)", async () => {
  const w = scriptedWatch();
  const watchers = new PollingWatchers({ watch: w.watch, maxTotalBytes: 100, maxOwnerBytes: 30, eventChars: 0 });
  const alice: DataPlaneCall = { owner: "alice", sandboxId: "sandbox-a", requestId: "r", user: "user" };
  const bob: DataPlaneCall = { owner: "bob", sandboxId: "sandbox-b", requestId: "r", user: "user" };
  const a1 = await watchers.create(alice, ".", false, (p) => p);
  const a2 = await watchers.create(alice, ".", false, (p) => p);
  const b = await watchers.create(bob, ".", false, (p) => p);
  const twenty = (c: string) => ({ type: "created", path: c.repeat(13) }); // 20 characters with its type
  w.send("change", twenty("a"), 0);
  w.send("change", twenty("b"), 2);
  await pollUntil(
    () => watchers.keptBytes,
    (n) => n === 40,
    2_000,
    "alice's and bob's events kept",
  );
  w.send("change", twenty("c"), 1); // alice's second: 40 of alice's 30
  await pollUntil(
    () => w.cancelled(1),
    (c) => c,
    2_000,
    "alice's second watch stopped",
  );
  expect(codeOf(() => watchers.take(alice, a2))).toBe(Code.DataLoss);
  w.send("change", { type: "created", path: "e" }, 2); // bob's own share still has room: 28 of 30
  await pollUntil(
    () => watchers.keptBytes,
    (n) => n === 48,
    2_000,
    "bob's second event kept",
  );
  expect(watchers.take(bob, b)).toEqual([
    { name: "b".repeat(13), type: "created" },
    { name: "e", type: "created" },
  ]);
  expect(watchers.take(alice, a1)).toEqual([{ name: "a".repeat(13), type: "created" }]);
  expect(watchers.keptBytes).toBe(0);
  const a3 = await watchers.create(alice, ".", false, (p) => p);
  w.send("change", twenty("f"), 3);
  await pollUntil(
    () => watchers.keptBytes,
    (n) => n === 20,
    2_000,
    "alice has room again",
  );
  watchers.remove(alice, a3);
  watchers.remove(alice, a1);
  expect(watchers.keptBytes).toBe(0);
});

test("a watcher the runtime ends with an error keeps its code when it is the path's fault (the directory went away), else is unavailable", async () => {
  for (const [code, want] of [
    ["file_not_found", Code.NotFound],
    ["invalid_path", Code.InvalidArgument],
    ["internal_error", Code.Unavailable],
    ["ship_error", Code.Unavailable],
    ["not_found", Code.Unavailable], // its sandbox was deleted
    ["conflict", Code.Unavailable], // its session ended
    ["no_such_code", Code.Unavailable],
    [42, Code.Unavailable],
    ["__proto__", Code.Unavailable],
  ] as const) {
    const w = scriptedWatch();
    const watchers = new PollingWatchers({ watch: w.watch, maxPerOwner: 1 });
    const id = await watchers.create(plainCall, ".", false, (p) => p);
    w.send("error", { error: { code, message: "the watched directory went away: d" } });
    await Bun.sleep(50);
    expect([code, codeOf(() => watchers.take(plainCall, id))]).toEqual([code, want]);
  }
});
