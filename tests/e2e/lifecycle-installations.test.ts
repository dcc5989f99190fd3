/**
 * Two Bay installations on one Docker engine, each with its own database and no
 * configured instance_id: each labels its objects with its database's own
 * installation id, so one's reconcile never takes the other's containers or
 * volumes for orphans (which would lose workspace data). A replica on the same
 * database shares the id.
 */
import { afterEach, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { requireShipImages } from "./support/e2e.ts";

setDefaultTimeout(90_000);

const open: TestBay[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

async function bayOn(dbPath?: string): Promise<TestBay> {
  const t = await createTestBay({ instanceId: null, ...(dbPath ? { dbPath } : {}) });
  open.push(t);
  return t;
}

test("installation ids: one per database, shared by replicas of that database", async () => {
  const a = await bayOn();
  const b = await bayOn();
  const aReplica = await bayOn(join(a.dir, "bay.db"));
  expect(a.bay.instanceId).toMatch(/^bay-[0-9a-f]{12}$/);
  expect(b.bay.instanceId).not.toBe(a.bay.instanceId);
  expect(aReplica.bay.instanceId).toBe(a.bay.instanceId);
});

test("another installation's reconcile leaves this one's container, volume and data alone", async () => {
  await requireShipImages();
  const a = await bayOn();
  const b = await bayOn();
  const created = await a.json("POST", "/v1/sandboxes");
  expect(created.status).toBe(201);
  const sb = created.body.id as string;
  const write = await a.json("POST", `/v1/sandboxes/${sb}/python/exec`, {
    body: { code: "open('keep.txt','w').write('precious'); 'ok'" },
  });
  expect(write.body.success).toBe(true);
  const containers = await a.bay.driver.listContainers({ sandbox_id: sb });
  expect(containers.length).toBe(1);

  const report = await b.bay.reconciler.runOnce();
  expect(report.orphanContainers).toBe(0);
  expect(report.orphanVolumes).toBe(0);

  expect((await a.bay.driver.containerStatus(containers[0]!.id)).state).toBe("running");
  expect((await a.bay.driver.listVolumes({ workspace_id: created.body.workspace_id })).length).toBe(1);
  const read = await a.json("POST", `/v1/sandboxes/${sb}/python/exec`, { body: { code: "open('keep.txt').read()" } });
  expect(read.body.output).toContain("precious");
  await a.call("DELETE", `/v1/sandboxes/${sb}`);
});
