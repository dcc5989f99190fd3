/**
 * The warm pool across real Bay processes on one database: concurrent creates
 * spread over two replicas claim each member exactly once, and a Bay killed with
 * SIGKILL while members are warming leaves, once another Bay runs on the same
 * database, a pool back at its size with no leaked container or volume and no
 * member handed out twice.
 */
import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/bay/store/database.ts";
import { startSqld } from "../support/sqld.ts";
import { createStores, type Stores } from "../../src/bay/store/index.ts";
import { startBayProcess, type BayProcess } from "../support/bay-process.ts";
import { pollUntil, uniqueInstanceId } from "../support/harness.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { docker, requireShipImages } from "./support/e2e.ts";

setDefaultTimeout(300_000);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
beforeAll(() => requireShipImages());

interface Setup {
  dir: string;
  /** The database the replicas share: a file in `dir` unless a libSQL server's URL was given. */
  dbUrl: string;
  instanceId: string;
  procs: BayProcess[];
  stores: () => Promise<Stores>;
}

function setup(serverUrl?: string): Setup {
  const dir = mkdtempSync(join(tmpdir(), "bay-pool-replicas-"));
  const s: Setup = {
    dir,
    dbUrl: serverUrl ?? `file:${join(dir, "bay.db")}`,
    instanceId: uniqueInstanceId(),
    procs: [],
    stores: async () => {
      const db = await openDatabase({ url: s.dbUrl });
      cleanups.push(async () => db.close());
      return createStores(db);
    },
  };
  cleanups.push(async () => {
    for (const p of s.procs) await p.kill("SIGTERM");
    await removeLabelled(docker, { "bay.instance_id": s.instanceId });
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

const start = (s: Setup, size: number) =>
  startBayProcess({
    dbUrl: s.dbUrl,
    instanceId: s.instanceId,
    dir: s.dir,
    env: { BAY_WARM_POOL: `python-default:${size}`, BAY_REAPER_INTERVAL: "1", BAY_LOG_LEVEL: "warn" },
  });

async function create(url: string, owner: string): Promise<{ status: number; id: string; state: string }> {
  const res = await fetch(`${url}/v1/sandboxes`, {
    method: "POST",
    headers: { "x-owner": owner, "content-type": "application/json" },
    body: "{}",
  });
  const body = (await res.json()) as { id: string; status: string };
  return { status: res.status, id: body.id, state: body.status };
}

/** Every container and volume of the installation belongs to something live: no leak. */
async function assertNoLeaks(stores: Stores, instanceId: string): Promise<void> {
  const active = new Map((await stores.sessions.listActive()).map((x) => [x.id, x]));
  const liveSessions = await stores.sandboxes.liveSessionIds(Date.now());
  for (const c of await docker.listContainers({ all: true, filters: { label: [`bay.instance_id=${instanceId}`] } })) {
    const sess = c.Labels["bay.session_id"];
    if (!sess) continue; // a data-plane helper, not a session
    expect(active.has(sess)).toBe(true);
    expect(liveSessions.has(sess)).toBe(true);
  }
  const liveVolumes = await stores.workspaces.liveVolumeNames();
  const volumes = (await docker.listVolumes({ filters: { label: [`bay.instance_id=${instanceId}`] } })).Volumes ?? [];
  for (const v of volumes) expect(liveVolumes.has(v.Name)).toBe(true);
}

/** Concurrent creates over two replicas on one database (`serverUrl`: a libSQL server's, else a file). */
async function claimsOnce(serverUrl?: string): Promise<void> {
  const s = setup(serverUrl);
  s.procs.push(await start(s, 3));
  s.procs.push(await start(s, 3));
  const stores = await s.stores();
  const before = await pollUntil(
    () => stores.pool.members(),
    (m) => m.filter((x) => x.state === "warm").length >= 3,
    240_000,
    "3 warm members",
  );
  // The size is the pool's, not each replica's: two replicas never fill it twice.
  expect(before.length).toBe(3);

  const owners = Array.from({ length: 10 }, (_, i) => `owner-${i}`);
  const results = await Promise.all(owners.map((o, i) => create(s.procs[i % 2]!.url, o)));
  expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
  const ids = results.map((r) => r.id);
  expect(new Set(ids).size).toBe(10);
  const hits = results.filter((r) => r.state === "ready");
  // At least the three warm members were handed out (refill may add more during the burst), each once.
  expect(hits.length).toBeGreaterThanOrEqual(3);
  for (const m of before.filter((x) => x.state === "warm")) expect(ids.filter((id) => id === m.id)).toHaveLength(1);
  for (const [i, r] of results.entries()) {
    const sb = await stores.sandboxes.get(r.id);
    expect(sb?.owner).toBe(`anon:${owners[i]}`);
    const ws = await stores.workspaces.get(sb!.workspaceId);
    expect(ws?.owner).toBe(`anon:${owners[i]}`);
  }
  // Each claimed member's session belongs to that sandbox alone.
  const sessions = await Promise.all(hits.map(async (h) => (await stores.sandboxes.get(h.id))?.currentSessionId));
  expect(new Set(sessions).size).toBe(hits.length);
}

describe("warm pool on two Bay processes", () => {
  const claims = "concurrent creates over both replicas: every member is claimed exactly once, by the one owner who got it";
  test(`${claims} (one database file)`, () => claimsOnce());
  test(`${claims} (one libSQL server, sqld)`, async () => {
    const sqld = await startSqld();
    cleanups.push(() => sqld.close());
    await claimsOnce(sqld.url);
  });

  test("kill -9 while members warm: the next Bay on the database cleans up, refills, and hands nothing out twice", async () => {
    const s = setup();
    const first = await start(s, 3);
    s.procs.push(first);
    const stores = await s.stores();
    // Killed with one member warm and another still starting (two start at once; a finished start
    // makes room for the third), so at least one start is cut short.
    await pollUntil(
      () => stores.pool.members(),
      (m) => m.some((x) => x.state === "warm") && m.some((x) => x.state === "warming"),
      240_000,
      "a warm member and a warming one",
    );
    await first.kill("SIGKILL");
    const killedWith = await stores.pool.members();
    const cutShort = killedWith.filter((x) => x.state === "warming");
    expect(cutShort.length).toBeGreaterThanOrEqual(1);

    const second = await start(s, 3);
    s.procs.push(second);
    // Back at its size, all warm; members the dead Bay left half-started are retired (their lease lapsed).
    const after = await pollUntil(
      () => stores.pool.members(),
      (m) => m.length === 3 && m.every((x) => x.state === "warm"),
      240_000,
      "the pool refilled to 3 warm members",
    );
    for (const m of cutShort) {
      expect(after.map((a) => a.id)).not.toContain(m.id);
      expect((await stores.sandboxes.get(m.id))?.deletedAt).not.toBeNull();
    }
    await pollUntil(
      async () => {
        try {
          await assertNoLeaks(stores, s.instanceId);
          return true;
        } catch {
          return false;
        }
      },
      (ok) => ok,
      60_000,
      "no leaked container or volume",
    );
    await assertNoLeaks(stores, s.instanceId);

    const got = await Promise.all(["a", "b", "c"].map((o) => create(second.url, o)));
    // Three creates, three warm members: each handed out once, none of them a start the dead Bay cut short.
    expect(got.map((g) => g.state)).toEqual(["ready", "ready", "ready"]);
    expect(new Set(got.map((g) => g.id))).toEqual(new Set(after.map((a) => a.id)));
  });
});
