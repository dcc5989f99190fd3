/**
 * The Docker daemon restarts under a ready sandbox (its container stops with the
 * daemon): the next call recovers on a new container with /workspace intact.
 * Restarts the local dockerd (tests/support/dockerd.ts), which stops every
 * container on the engine, so it is not picked up by `bun test`: scripts/test.sh
 * (the README's test command, also CI's) runs it on its own, after the rest.
 */
import { afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { restartDockerd } from "../support/dockerd.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { containersOf, newSandbox, py, requireShipImages } from "../e2e/support/e2e.ts";

setDefaultTimeout(240_000);

let t: TestBay | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});
beforeAll(() => requireShipImages());

test("after a dockerd restart the next call starts a new container and the data is intact", async () => {
  t = await createTestBay();
  const id = await newSandbox(t);
  expect((await py(t, id, "open('/workspace/before-restart.txt','w').write('persisted')")).body.success).toBe(true);
  const [before] = await containersOf(t, id);
  expect(before?.state).toBe("running");

  await restartDockerd();

  const r = await py(t, id, "print(open('/workspace/before-restart.txt').read())");
  expect(r.status).toBe(200);
  expect(r.body.output).toContain("persisted");
  const after = await containersOf(t, id);
  expect(after).toHaveLength(1);
  expect(after[0]!.id).not.toBe(before!.id);
  expect(after[0]!.state).toBe("running");
  expect((await t.json("GET", `/v1/sandboxes/${id}`)).body.status).toBe("ready");
  // Nothing is left for reconcile to repair.
  const rep = await t.bay.reconciler.runOnce();
  expect(rep).toMatchObject({ deadSessions: 0, orphanContainers: 0, errors: 0 });
});
