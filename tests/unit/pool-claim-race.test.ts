/**
 * A claim racing with a retire, in two real processes on one database file (as
 * two Bay replicas: one handing members to owners, the other retiring them by
 * age): both walk the same members oldest first, starting at the same moment,
 * so they contend for the same rows. Every member ends in exactly one state:
 * claimed (live, owned, its session ready, its workspace the owner's) or retired
 * (tombstoned unowned, with its session ended and its workspace), never both,
 * never a claimed sandbox deleted.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newId } from "../../src/bay/domain/ids.ts";
import { POOL_OWNER } from "../../src/bay/domain/lifecycle.ts";
import { openDatabase, type Database } from "../../src/bay/store/database.ts";
import { createStores, type Stores } from "../../src/bay/store/index.ts";

const ROOT = join(import.meta.dir, "../..");
const MEMBERS = 200;

let dir: string;
let db: Database;
let stores: Stores;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "bay-pool-race-"));
  db = await openDatabase({ url: `file:${join(dir, "bay.db")}` });
  stores = createStores(db);
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The other process: once its database is open it says "ready", reads the moment
 * to start from stdin, and from then retires each member in turn (as
 * PoolManager.retire's database step does).
 */
const RETIRER = `
import { openDatabase } from "${ROOT}/src/bay/store/database.ts";
import { createStores } from "${ROOT}/src/bay/store/index.ts";
const [path, ...ids] = process.argv.slice(2);
const stores = createStores(await openDatabase({ url: "file:" + path }));
console.log("ready");
let startAt = 0;
for await (const chunk of Bun.stdin.stream()) {
  startAt = Number(new TextDecoder().decode(chunk).trim());
  break;
}
while (Date.now() < startAt) await Bun.sleep(0);
const retired = [];
for (const id of ids) if (await stores.sandboxes.tombstone(id, Date.now(), { poolMemberOnly: true })) retired.push(id);
console.log(JSON.stringify(retired));
`;

test("claims in one process and retires in another never both win a member", async () => {
  const now = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    const m = {
      sandboxId: newId("sandbox", now + i),
      workspaceId: newId("ws", now + i),
      sessionId: newId("sess", now + i),
      profileId: "python-default",
      fingerprint: "fp",
      secret: crypto.randomUUID(),
      sizeLimitMb: 1024,
      leaseOwner: "replica-test",
      leaseExpiresAt: now + 60_000,
      now: now - 1000 + i,
    };
    expect(await stores.pool.insertMember(m, MEMBERS, 1000, 2 * MEMBERS)).toBe(true);
    await stores.db.execute(stores.sessions.markReadyStatement(m.sessionId, "http://127.0.0.1:1", now));
    ids.push(m.sandboxId);
  }
  const script = join(dir, "retirer.ts");
  await Bun.write(script, RETIRER);
  const child = Bun.spawn(["bun", script, join(dir, "bay.db"), ...ids], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const lines = child.stdout.getReader();
  const first = new TextDecoder().decode((await lines.read()).value);
  expect(first.trim()).toBe("ready");
  const startAt = Date.now() + 100;
  child.stdin.write(`${startAt}\n`);
  await child.stdin.flush();

  while (Date.now() < startAt) await Bun.sleep(0);
  const claims: Array<{ owner: string; id: string }> = [];
  for (let i = 0; i < MEMBERS; i++) {
    const owner = `anon:o${i}`;
    const id = await stores.pool.claim({
      owner,
      profileId: "python-default",
      token: crypto.randomUUID(),
      now: Date.now(),
      oldest: now - 3_600_000,
      fingerprint: "fp",
      expiresAt: null,
      idleExpiresAt: Date.now() + 1_800_000,
      maxSandboxes: 50,
      maxWorkspaces: 100,
    });
    if (id) claims.push({ owner, id });
  }
  let out = "";
  for (let r = await lines.read(); !r.done; r = await lines.read()) out += new TextDecoder().decode(r.value);
  const [err, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  expect(err).toBe("");
  expect(code).toBe(0);
  const retired = new Set(JSON.parse(out) as string[]);
  const claimed = new Set(claims.map((c) => c.id));

  for (const id of claimed) expect(retired.has(id)).toBe(false);
  // Every member went one way: a claim takes the oldest live one, so none is left over.
  expect(claimed.size + retired.size).toBe(MEMBERS);
  expect(new Set([...claimed, ...retired])).toEqual(new Set(ids));
  for (const { owner, id } of claims) {
    const sb = await stores.sandboxes.get(id);
    expect([sb?.owner, sb?.deletedAt, sb?.session?.status]).toEqual([owner, null, "ready"]);
    expect((await stores.workspaces.get(sb!.workspaceId))?.owner).toBe(owner);
  }
  for (const id of retired) {
    const sb = await stores.sandboxes.get(id);
    expect(sb?.owner).toBe(POOL_OWNER);
    expect(sb?.deletedAt).not.toBeNull();
    expect(sb?.currentSessionId).toBeNull();
    expect((await stores.workspaces.get(sb!.workspaceId))?.deletedAt).not.toBeNull();
  }
  expect(await stores.pool.members()).toEqual([]);
  console.log(`claimed ${claimed.size}, retired ${retired.size}`);
}, 60_000);
