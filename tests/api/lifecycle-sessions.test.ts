/**
 * Sessions, fast: start on first use, reuse, stop, delete, concurrent first
 * calls, a start seen from outside, and starts that fail, on the in-memory
 * driver with a real libSQL file. The same rules on Docker with the real Ship:
 * tests/e2e/sandbox-lifecycle.test.ts, cold-start-status, sandbox-faults.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { databaseUnavailable } from "../../src/bay/store/database-errors.ts";
import { pollUntil } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import {
  containersOf,
  createMemoryBay,
  memoryEngine,
  type MemoryBay,
  newSandbox,
  py,
  pythonProfile,
  sandbox,
  sessionOf,
  sh,
} from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

describe("a session starts on first use and is reused", () => {
  test("create → idle, no container; python 1+1 → '2' starts one session: ready, idle deadline armed, one running container", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    expect(await sandbox(t, id)).toMatchObject({ status: "idle", idle_expires_at: null });
    expect(await containersOf(t, id)).toHaveLength(0);

    const r = await py(t, id, "1+1");
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, output: "2\n" });

    const after = await sandbox(t, id);
    expect(after.status).toBe("ready");
    const idleTimeout = t.config.profiles[0]!.idle_timeout * 1000;
    expect(Date.parse(after.idle_expires_at)).toBeGreaterThanOrEqual(t.clock.now() + idleTimeout - 5_000);
    const [c, ...more] = await containersOf(t, id);
    expect(more).toHaveLength(0);
    expect(c).toMatchObject({ state: "running", labels: { sandbox_id: id, owner: "anon:alice", instance_id: t.bay.instanceId } });

    // The session's secret went to its container on stdin only: not in its spec, its labels or the API.
    const sess = (await sessionOf(t, id))!;
    expect(sess).toMatchObject({ status: "ready", containerId: c!.id });
    expect(sess.secret!.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify(t.engine.specOf(c!.id))).not.toContain(sess.secret!);
    expect(JSON.stringify(after)).not.toContain(sess.secret!);
    const meta = await fetch(`${sess.endpoint}/meta`, { headers: { authorization: `Bearer ${sess.secret}` } });
    expect(((await meta.json()) as { session: { id: string } }).session.id).toBe(sess.id);
  });

  test("later calls reuse the session: kernel state, shell and files meet in the same container", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    expect((await py(t, id, "x = 21")).status).toBe(200);
    const first = await sessionOf(t, id);
    expect((await py(t, id, "x * 2")).body.output).toBe("42\n");
    expect((await sh(t, id, "echo from-shell > s.txt")).body.exit_code).toBe(0);
    expect((await py(t, id, "print(open('/workspace/s.txt').read())")).body.output).toBe("from-shell\n\n");
    const file = await t.json("GET", `/v1/sandboxes/${id}/filesystem/files?path=s.txt`);
    expect(file.body.content).toBe("from-shell\n");
    expect((await sessionOf(t, id))!.id).toBe(first!.id);
    expect(await containersOf(t, id)).toHaveLength(1);
  });

  test("10 concurrent first calls on a cold sandbox all succeed on exactly one container and one session", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => py(t!, id, `${i} * 2`)));
    for (const [i, r] of results.entries()) expect(r.body.output).toBe(`${i * 2}\n`);
    expect(await containersOf(t, id)).toHaveLength(1);
    const rs = await t.bay.deps.stores.db.execute({
      sql: "SELECT status, COUNT(*) AS n FROM sessions WHERE sandbox_id = ? GROUP BY status",
      args: [id],
    });
    expect(rs.rows.map((r) => [r.status, Number(r.n)])).toEqual([["ready", 1]]);
  });

  test("another owner's sandbox is 404 and starts nothing", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    const r = await py(t, id, "1", "mallory");
    expect(r.status).toBe(404);
    expect(await containersOf(t, id)).toHaveLength(0);
  });
});

describe("stop and delete end the session", () => {
  test("stop: container gone, sandbox idle, files kept, kernel state gone; stopping twice is fine", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    expect((await py(t, id, "x = 1; open('/workspace/keep.txt','w').write('durable')")).body.success).toBe(true);
    const before = (await sessionOf(t, id))!;

    for (let i = 0; i < 2; i++) {
      const s = await t.json("POST", `/v1/sandboxes/${id}/stop`);
      expect(s.status).toBe(200);
      expect(s.body).toMatchObject({ status: "idle", idle_expires_at: null });
    }
    expect(await containersOf(t, id)).toHaveLength(0);
    expect((await t.bay.deps.stores.sessions.get(before.id))!.status).toBe("stopped");

    expect((await py(t, id, "print(open('keep.txt').read())")).body.output).toBe("durable\n");
    expect((await py(t, id, "x")).body.error).toContain("NameError: name 'x' is not defined");
    expect((await sessionOf(t, id))!.id).not.toBe(before.id);
  });

  test("delete: container and managed volume gone, then 404 for the sandbox, its calls and its workspace", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    const wsId = (await sandbox(t, id)).workspace_id as string;
    expect((await py(t, id, "open('x.txt','w').write('x')")).status).toBe(200);
    expect(await t.engine.listVolumes({ workspace_id: wsId })).toHaveLength(1);

    expect((await t.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(await containersOf(t, id)).toHaveLength(0);
    expect(await t.engine.listVolumes({ workspace_id: wsId })).toHaveLength(0);
    expect((await t.json("GET", `/v1/sandboxes/${id}`)).status).toBe(404);
    expect((await py(t, id, "1")).status).toBe(404);
    expect((await t.json("GET", `/v1/workspaces/${wsId}`)).status).toBe(404);
    expect((await t.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(404);
  });
});

describe("a start seen from outside", () => {
  test("GET shows `starting` while the first call starts the session, then `ready`", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    const hold = t.engine.holdStarts();
    const call = py(t, id, "1+1");
    await hold.reached;
    expect((await sandbox(t, id)).status).toBe("starting");
    hold.release();
    expect((await call).body.output).toBe("2\n");
    expect((await sandbox(t, id)).status).toBe("ready");
  });

  test("DELETE during a start: the call answers 404 or 409, no container remains", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    const hold = t.engine.holdStarts();
    const call = py(t, id, "1+1");
    await hold.reached;
    expect((await t.call("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    hold.release();
    const r = await call;
    expect([404, 409]).toContain(r.status);
    expect(
      await pollUntil(
        () => containersOf(t!, id),
        (l) => l.length === 0,
        5_000,
        "no container left",
      ),
    ).toEqual([]);
  });

  test("a crashed container: the next call runs on a new one with the workspace intact", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    expect((await py(t, id, "open('a.txt','w').write('kept')")).status).toBe(200);
    const [old] = await containersOf(t, id);
    t.engine.crash(old!.id);
    // Bay learns of the crash as its call channel's connection ends, on the next turn of
    // its event loop (a call already sent on it then may have run: it fails, never re-sent).
    await Bun.sleep(20);

    const r = await py(t, id, "print(open('a.txt').read())");
    expect(r.status).toBe(200);
    expect(r.body.output).toBe("kept\n");
    const now = await containersOf(t, id);
    expect(now.map((c) => c.state)).toEqual(["running"]);
    expect(now[0]!.id).not.toBe(old!.id);
  });
});

describe("starts that fail", () => {
  const broken = (quirk: Parameters<typeof memoryEngine>[0]) => memoryEngine(quirk);

  test("a runtime that exits at once → 503 session_not_ready + Retry-After, failed with last_error, no container; the next call tries again", async () => {
    t = await createMemoryBay({ engine: broken({ images: { [SHIP_IMAGE]: { exitsWith: 3 } } }) });
    const id = await newSandbox(t);
    const r = await py(t, id, "1");
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe("session_not_ready");
    expect(Number(r.res.headers.get("retry-after"))).toBeGreaterThan(0);
    const sb = await sandbox(t, id);
    expect(sb.status).toBe("failed");
    expect(sb.last_error).toContain("stopped right after start");
    expect(await containersOf(t, id)).toHaveLength(0);

    expect((await py(t, id, "1")).status).toBe(503);
    const rs = await t.bay.deps.stores.db.execute({ sql: "SELECT status FROM sessions WHERE sandbox_id = ?", args: [id] });
    expect(rs.rows.map((row) => row.status)).toEqual(["failed", "failed"]);
  });

  test.each([
    ["api_version_mismatch", { apiVersion: "v2" }],
    ["capability_mismatch", { capabilities: ["filesystem"] as Array<"filesystem"> }],
  ])("a Ship whose /meta does not fit (%s) → 502 ship_error, container removed", async (reason, quirk) => {
    t = await createMemoryBay({ engine: broken({ images: { [SHIP_IMAGE]: quirk } }) });
    const id = await newSandbox(t);
    const r = await py(t, id, "1");
    expect(r.status).toBe(502);
    expect(r.body.error).toMatchObject({ code: "ship_error", details: { reason } });
    expect(await containersOf(t, id)).toHaveLength(0);
    expect((await sandbox(t, id)).status).toBe("failed");
  });

  test("a runtime that never gets healthy → 503 once ready_timeout has passed on the clock", async () => {
    t = await createMemoryBay({ engine: broken({ images: { [SHIP_IMAGE]: { neverHealthy: true } } }) });
    const id = await newSandbox(t);
    const call = py(t, id, "1");
    await pollUntil(
      () => containersOf(t!, id),
      (l) => l[0]?.state === "running",
      5_000,
      "container running",
    );
    t.clock.advance(t.config.driver.ready_timeout * 1000);
    const r = await call;
    expect(r.status).toBe(503);
    expect(r.body.error.message).toContain("did not become ready in time");
    expect(await containersOf(t, id)).toHaveLength(0);
  });

  test("a capability the profile lacks → 400 capability_not_supported, nothing started", async () => {
    t = await createMemoryBay({ config: { profiles: pythonProfile({ capabilities: ["filesystem"] }) } });
    const id = await newSandbox(t);
    const r = await py(t, id, "1");
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("capability_not_supported");
    expect(await containersOf(t, id)).toHaveLength(0);
  });
});

describe("a start whose last write the database failed", () => {
  test("marking it ready committed but the answer was lost: 503 database_unavailable, and the session stays, container and all", async () => {
    t = await createMemoryBay();
    const id = await newSandbox(t);
    const db = t.bay.deps.stores.db;
    const batch = db.batch.bind(db);
    let lost = 0;
    db.batch = async (stmts, mode) => {
      const results = await batch(stmts, mode);
      const marksReady = stmts.some((s) =>
        /UPDATE sessions SET status = 'ready'/.test(typeof s === "string" ? s : Array.isArray(s) ? s[0] : s.sql),
      );
      if (marksReady && lost++ === 0) throw databaseUnavailable("timeout", new Error("no answer in time"));
      return results;
    };
    const first = await py(t, id, "1+1");
    expect(first.status).toBe(503);
    expect(first.body.error).toMatchObject({ code: "database_unavailable", details: { reason: "timeout" } });
    expect(lost).toBe(1);
    const session = await sessionOf(t, id);
    expect(session?.status).toBe("ready");
    expect(await containersOf(t, id)).toHaveLength(1);
    expect((await sandbox(t, id)).last_error).toBeNull();
    // The next call runs on that same session: nothing was undone, nothing started twice.
    const next = await py(t, id, "2+2");
    expect(next.body.output).toBe("4\n");
    expect((await sessionOf(t, id))?.id).toBe(session!.id);
    expect(await containersOf(t, id)).toHaveLength(1);
  });
});
