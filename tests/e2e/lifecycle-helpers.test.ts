/**
 * Reconcile and workspace data-plane helpers: a helper left behind by a Bay that
 * died mid-call is removed once it is older than any call could keep it, a
 * fresh one on a live workspace is left alone, another installation's helper is
 * never touched, and a deleted workspace's helper goes at once (it would hold
 * the volume for half an hour).
 */
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import Docker from "dockerode";
import { createArchiveHelper, helperName } from "../../src/bay/drivers/docker/archive.ts";
import { ensureArchiveRoot } from "../../src/bay/drivers/docker/archive-root.ts";
import { LabelCodec } from "../../src/bay/drivers/docker/labels.ts";
import { Reconciler, STALE_HELPER_MS } from "../../src/bay/domain/reconciler.ts";
import { silentLogger } from "../../src/bay/logger.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";

setDefaultTimeout(60_000);

let t: TestBay;
let other: TestBay;

beforeEach(async () => {
  t = await createTestBay();
  other = await createTestBay();
});

afterEach(async () => {
  await t.close();
  await other.close();
});

/** A live workspace of `bay` (created through its API) and its volume's name. */
async function workspaceOf(bay: TestBay): Promise<{ id: string; volume: string }> {
  const r = await bay.json("POST", "/v1/workspaces", { body: {} });
  expect(r.status).toBe(201);
  const rec = await bay.bay.deps.stores.workspaces.get(r.body.id);
  return { id: r.body.id, volume: rec!.volumeName };
}

/** A data-plane helper as a Bay that died mid-call leaves it: created on the workspace's volume, never removed. */
async function leaveHelper(bay: TestBay, ws: { id: string; volume: string }): Promise<string> {
  const labels = { owner: "alice", workspace_id: ws.id, instance_id: bay.bay.instanceId };
  await bay.bay.driver.createVolume(ws.volume, labels);
  const docker = new Docker({ socketPath: "/var/run/docker.sock" });
  await ensureArchiveRoot(docker, AbortSignal.timeout(30_000));
  return createArchiveHelper(
    docker,
    new LabelCodec("bay."),
    { name: ws.volume, labels },
    { name: helperName(), signal: AbortSignal.timeout(30_000) },
  );
}

function reconcilerAt(bay: TestBay, offsetMs: number): Reconciler {
  return new Reconciler({
    stores: bay.bay.deps.stores,
    driver: bay.bay.driver,
    sessions: bay.bay.sessions,
    logger: silentLogger,
    instanceId: bay.bay.instanceId,
    now: () => Date.now() + offsetMs,
  });
}

test("a stale helper is removed, a fresh one and another installation's are kept", async () => {
  const mine = await leaveHelper(t, await workspaceOf(t));
  const theirs = await leaveHelper(other, await workspaceOf(other));

  const fresh = await reconcilerAt(t, 0).runOnce();
  expect(fresh.staleHelpers).toBe(0);
  expect((await t.bay.driver.containerStatus(mine)).state).toBe("created");

  const later = await reconcilerAt(t, STALE_HELPER_MS + 60_000).runOnce();
  expect(later.staleHelpers).toBe(1);
  expect((await t.bay.driver.containerStatus(mine)).state).toBe("missing");
  expect((await other.bay.driver.containerStatus(theirs)).state).toBe("created");
});

test("a deleted workspace's helper is removed at the next pass, and then its volume", async () => {
  const ws = await workspaceOf(t);
  const helper = await leaveHelper(t, ws);
  // The helper holds the volume: the delete answers, the volume stays for reconcile.
  expect((await t.call("DELETE", `/v1/workspaces/${ws.id}`)).status).toBe(204);
  const volumes = async () => (await t.bay.driver.listVolumes({ instance_id: t.bay.instanceId })).map((v) => v.name);
  expect(await volumes()).toContain(ws.volume);

  const report = await reconcilerAt(t, 0).runOnce();
  expect(report.staleHelpers).toBe(1);
  expect(report.orphanVolumes).toBe(1);
  expect((await t.bay.driver.containerStatus(helper)).state).toBe("missing");
  expect(await volumes()).not.toContain(ws.volume);
});
