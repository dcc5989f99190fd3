/**
 * limits.max_open_streams_per_owner: long-lived answers (watches, streamed
 * execs, followed outputs, terminals) are bounded per owner. Past the limit a
 * call is refused with 429 quota_exceeded before it reaches a Ship; ending an
 * answer gives its slot back; other owners and ordinary calls are unaffected;
 * refusals and failures never leak a slot.
 */
import { afterEach, expect, test } from "bun:test";
import { MemoryDriver } from "../../src/bay/drivers/memory/memory-driver.ts";
import { SHIP_DATA_IMAGE, SHIP_IMAGE } from "../support/images.ts";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";

const open: TestBay[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

async function bay(limit: number): Promise<TestBay> {
  const t = await createTestBay({
    driver: new MemoryDriver({ images: [SHIP_IMAGE, SHIP_DATA_IMAGE] }),
    config: { limits: { max_open_streams_per_owner: limit } } as any,
  });
  open.push(t);
  return t;
}

const watch = (t: TestBay, id: string, owner: string) => t.call("GET", `/v1/sandboxes/${id}/filesystem/watch?path=.`, { owner });

test("past the limit a stream is refused with 429 before it reaches a Ship; ending one frees its slot", async () => {
  const t = await bay(2);
  const mine = (await t.json("POST", "/v1/sandboxes", { body: {}, owner: "alice" })).body.id;
  const theirs = (await t.json("POST", "/v1/sandboxes", { body: {}, owner: "bob" })).body.id;
  const held = [await watch(t, mine, "alice"), await watch(t, mine, "alice")];
  for (const r of held) {
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/event-stream");
  }
  expect(t.bay.deps.router.openStreams("anon:alice")).toBe(2);

  const refused = await t.json("GET", `/v1/sandboxes/${mine}/filesystem/watch?path=.`, { owner: "alice" });
  expect(refused.status).toBe(429);
  expect(refused.body.error.code).toBe("quota_exceeded");
  expect(refused.body.error.details).toEqual({ reason: "open_streams", limit: 2 });
  expect(refused.res.headers.get("retry-after")).toBe("1");
  const streamed = await t.json("POST", `/v1/sandboxes/${mine}/python/exec`, {
    body: { code: "1+1" },
    headers: { accept: "text/event-stream" },
    owner: "alice",
  });
  expect(streamed.status).toBe(429);
  expect(streamed.res.headers.get("content-type")).toContain("application/json");
  // Refusals hold nothing.
  expect(t.bay.deps.router.openStreams("anon:alice")).toBe(2);

  // An ordinary call of the same owner, and another owner's stream, go through.
  const plain = await t.json("POST", `/v1/sandboxes/${mine}/python/exec`, { body: { code: "1+1" }, owner: "alice" });
  expect(plain.status).toBe(200);
  const other = await watch(t, theirs, "bob");
  expect(other.status).toBe(200);
  await other.body?.cancel();

  // The client ends one stream: its slot comes back and the next one opens.
  await held[0]!.body?.cancel();
  await pollUntil(
    () => t.bay.deps.router.openStreams("anon:alice"),
    (n) => n === 1,
    5_000,
    "the slot given back",
  );
  const again = await watch(t, mine, "alice");
  expect(again.status).toBe(200);
  await again.body?.cancel();
  await held[1]!.body?.cancel();
  await pollUntil(
    () => t.bay.deps.router.openStreams("anon:alice"),
    (n) => n === 0,
    5_000,
    "every slot given back",
  );
});

test("a stream refused for another reason (bad path, another owner's sandbox) gives its slot back at once", async () => {
  const t = await bay(1);
  const mine = (await t.json("POST", "/v1/sandboxes", { body: {}, owner: "alice" })).body.id;
  const theirs = (await t.json("POST", "/v1/sandboxes", { body: {}, owner: "bob" })).body.id;
  for (let i = 0; i < 3; i++) {
    expect((await t.json("GET", `/v1/sandboxes/${theirs}/filesystem/watch?path=.`, { owner: "alice" })).status).toBe(404);
    expect((await t.json("GET", `/v1/sandboxes/${mine}/filesystem/watch?path=no-such-dir`, { owner: "alice" })).status).toBe(404);
  }
  expect(t.bay.deps.router.openStreams("anon:alice")).toBe(0);
  const ok = await watch(t, mine, "alice");
  expect(ok.status).toBe(200);
  await ok.body?.cancel();
});

test("a HEAD on a stream (a watch, a followed output) answers its headers and holds no slot", async () => {
  const t = await bay(1);
  const id = (await t.json("POST", "/v1/sandboxes", { body: {}, owner: "alice" })).body.id;
  const started = await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, {
    body: { command: "sleep 30", background: true },
    owner: "alice",
  });
  expect(started.status).toBe(200);
  const pid = started.body.process_id as string;
  for (let i = 0; i < 3; i++) {
    for (const path of [`/filesystem/watch?path=.`, `/shell/processes/${pid}/output`]) {
      const res = await t.bay.app.request(`/v1/sandboxes/${id}${path}`, {
        method: "HEAD",
        headers: { "x-owner": "alice", accept: "text/event-stream" },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      expect(await res.text()).toBe("");
      // The slot the GET route took is given back: with a limit of 1, the next one fits.
      expect(t.bay.deps.router.openStreams("anon:alice")).toBe(0);
    }
  }
  const ok = await watch(t, id, "alice");
  expect(ok.status).toBe(200);
  await ok.body?.cancel();
});
