/**
 * envd's polling watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher) on the real
 * engine and Ship: what the E2B Python SDK's synchronous `files.watch_dir` calls, sent
 * here as that SDK sends them (Connect unary calls, JSON codec). A watcher reports the
 * changes made after it was created, names relative to its directory, answers only its
 * own sandbox, holds one of its owner's open-stream slots until removed, and ends with
 * its directory or its sandbox.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestBay, pollUntil, type TestBay } from "../support/harness.ts";
import { requireShipImages } from "./support/e2e.ts";
import { createE2bSandbox, type E2bCreated } from "./support/e2b.ts";

let t: TestBay;
type Created = E2bCreated;

beforeAll(async () => {
  await requireShipImages();
  t = await createTestBay({ config: { limits: { max_open_streams_per_owner: 3 } } as never });
}, 60_000);
afterAll(async () => {
  await t?.close();
});

const create = (owner = "alice") => createE2bSandbox(t, owner);

/** A unary Connect call with the JSON codec, as the Python SDK sends it. */
async function rpc(sb: Created, method: string, body: unknown, token = sb.envdAccessToken) {
  const res = await t.bay.app.request(`/e2b/filesystem.Filesystem/${method}`, {
    method: "POST",
    headers: {
      "e2b-sandbox-id": sb.sandboxID,
      "x-access-token": token,
      "content-type": "application/json",
      "connect-protocol-version": "1",
      "user-agent": "connect-python",
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function write(sb: Created, path: string, content: string): Promise<void> {
  const res = await t.bay.app.request(`/e2b/files?path=${encodeURIComponent(path)}`, {
    method: "POST",
    headers: { "e2b-sandbox-id": sb.sandboxID, "x-access-token": sb.envdAccessToken, "content-type": "application/octet-stream" },
    body: content,
  });
  expect(res.status).toBe(200);
}

/** Polls until the events seen so far satisfy `done`. */
async function eventsUntil(sb: Created, id: string, done: (events: Array<{ name: string; type: string }>) => boolean) {
  const seen: Array<{ name: string; type: string }> = [];
  await pollUntil(
    async () => {
      const r = await rpc(sb, "GetWatcherEvents", { watcherId: id });
      expect(r.status).toBe(200);
      seen.push(...(r.body.events ?? []));
      return seen;
    },
    done,
    20_000,
    "watcher events",
  );
  return seen;
}

describe("polling watchers", () => {
  test("changes after the create come in order on the polls, names relative; removed, the id is NotFound", async () => {
    const sb = await create();
    expect((await rpc(sb, "MakeDir", { path: "/home/user/w" })).status).toBe(200);
    await write(sb, "/home/user/w/before.txt", "0");
    const created = await rpc(sb, "CreateWatcher", { path: "/home/user/w", recursive: false });
    expect(created.status).toBe(200);
    const id = created.body.watcherId as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    // Nothing happened since the create: an empty list (the JSON codec leaves it out).
    expect((await rpc(sb, "GetWatcherEvents", { watcherId: id })).body.events ?? []).toEqual([]);
    await write(sb, "/home/user/w/a.txt", "1");
    expect((await rpc(sb, "Remove", { path: "/home/user/w/before.txt" })).status).toBe(200);
    const seen = await eventsUntil(sb, id, (s) => s.some((e) => e.name === "before.txt" && e.type === "EVENT_TYPE_REMOVE"));
    expect(seen.find((e) => e.name === "a.txt")).toBeDefined();
    expect(seen.every((e) => !e.name.startsWith("/") && !e.name.startsWith("w/"))).toBe(true);
    expect(seen.findIndex((e) => e.name === "a.txt")).toBeLessThan(seen.findIndex((e) => e.name === "before.txt"));
    // A poll takes what it returns: the next one starts empty.
    expect((await rpc(sb, "GetWatcherEvents", { watcherId: id })).body.events ?? []).toEqual([]);
    expect((await rpc(sb, "RemoveWatcher", { watcherId: id })).status).toBe(200);
    for (const method of ["GetWatcherEvents", "RemoveWatcher"]) {
      const gone = await rpc(sb, method, { watcherId: id });
      expect(`${method} ${gone.status} ${gone.body.code}`).toBe(`${method} 404 not_found`);
    }
  }, 120_000);

  test("another sandbox's token, or its owner, sees another's watcher as unknown; paths outside the home are refused", async () => {
    const a = await create();
    const b = await create("mallory");
    const id = (await rpc(a, "CreateWatcher", { path: "/home/user" })).body.watcherId as string;
    for (const method of ["GetWatcherEvents", "RemoveWatcher"]) {
      expect((await rpc(b, method, { watcherId: id })).status).toBe(404);
      // A's id with A's sandbox named but B's token: the token is checked first.
      expect((await rpc(a, method, { watcherId: id }, b.envdAccessToken)).status).toBe(401);
      expect((await rpc(a, method, { watcherId: "x".repeat(5000) })).status).toBe(404);
    }
    // Still A's, still working.
    await write(a, "/home/user/still.txt", "x");
    await eventsUntil(a, id, (s) => s.some((e) => e.name === "still.txt"));
    expect((await rpc(a, "RemoveWatcher", { watcherId: id })).status).toBe(200);
    for (const path of ["/etc", "/home/user/../../etc", "/proc/self"]) {
      const r = await rpc(a, "CreateWatcher", { path });
      expect(`${path}: ${r.status}`).toBe(`${path}: 400`);
    }
    expect((await rpc(a, "CreateWatcher", { path: "/home/user/missing" })).status).toBe(404);
  }, 120_000);

  test("each watcher holds one of its owner's open-stream slots until removed (limit 3: the 4th is refused)", async () => {
    const sb = await create("carol");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await rpc(sb, "CreateWatcher", { path: "/home/user" });
      expect(r.status).toBe(200);
      ids.push(r.body.watcherId);
    }
    const refused = await rpc(sb, "CreateWatcher", { path: "/home/user" });
    expect(`${refused.status} ${refused.body.code}`).toBe("429 resource_exhausted");
    expect((await rpc(sb, "RemoveWatcher", { watcherId: ids.pop() })).status).toBe(200);
    const again = await pollUntil(
      () => rpc(sb, "CreateWatcher", { path: "/home/user" }),
      (r) => r.status === 200,
      5_000,
      "a freed slot",
    );
    ids.push(again.body.watcherId);
    for (const id of ids) expect((await rpc(sb, "RemoveWatcher", { watcherId: id })).status).toBe(200);
    await pollUntil(
      () => t.bay.deps.router.openStreams("anon:carol"),
      (n) => n === 0,
      5_000,
      "slots given back",
    );
  }, 120_000);

  test("a watcher ends with its directory: its last events first, then an error; its slot is given back", async () => {
    const sb = await create("dave");
    expect((await rpc(sb, "MakeDir", { path: "/home/user/gone" })).status).toBe(200);
    const id = (await rpc(sb, "CreateWatcher", { path: "/home/user/gone" })).body.watcherId as string;
    await write(sb, "/home/user/gone/x.txt", "x");
    await pollUntil(
      () => t.bay.deps.router.openStreams("anon:dave"),
      (n) => n === 1,
      5_000,
      "the watcher's slot",
    );
    expect((await rpc(sb, "Remove", { path: "/home/user/gone" })).status).toBe(200);
    const seen: Array<{ name: string }> = [];
    const ended = await pollUntil(
      async () => {
        const r = await rpc(sb, "GetWatcherEvents", { watcherId: id });
        if (r.status === 200) seen.push(...(r.body.events ?? []));
        return r;
      },
      (r) => r.status !== 200,
      20_000,
      "the watcher's end",
    );
    expect(seen.some((e) => e.name === "x.txt")).toBe(true);
    expect(ended.body.code).toBe("not_found"); // the directory went away: the request's own fault, not the runtime's
    expect((await rpc(sb, "GetWatcherEvents", { watcherId: id })).status).toBe(404);
    await pollUntil(
      () => t.bay.deps.router.openStreams("anon:dave"),
      (n) => n === 0,
      5_000,
      "slot given back",
    );
  }, 120_000);
});
