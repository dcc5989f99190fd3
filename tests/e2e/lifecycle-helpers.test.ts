/**
 * Reconcile and workspace data-plane helpers: a helper left behind by a Bay that
 * died mid-call is removed once it is older than any call could keep it, a
 * fresh one is left alone, and another installation's helper is never touched.
 */
import { afterEach, beforeEach, expect, setDefaultTimeout, test } from "bun:test";
import Docker from "dockerode";
import { createArchiveHelper, helperName } from "../../src/bay/drivers/docker/archive.ts";
import { LabelCodec } from "../../src/bay/drivers/docker/labels.ts";
import { Reconciler, STALE_HELPER_MS } from "../../src/bay/domain/reconciler.ts";
import { silentLogger } from "../../src/bay/logger.ts";
import { createTestBay, uniqueInstanceId, type TestBay } from "../support/harness.ts";

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

/** A data-plane helper as a Bay that died mid-call leaves it: created on the volume, never removed. */
async function leaveHelper(bay: TestBay, volume: string): Promise<string> {
  const labels = { owner: "alice", workspace_id: volume, instance_id: bay.bay.instanceId };
  await bay.bay.driver.createVolume(volume, labels);
  const docker = new Docker({ socketPath: "/var/run/docker.sock" });
  return createArchiveHelper(
    docker,
    new LabelCodec("bay."),
    { name: volume, labels },
    {
      name: helperName(),
      image: bay.config.driver.helper_image,
      signal: AbortSignal.timeout(30_000),
    },
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
  const mine = await leaveHelper(t, `ws-${uniqueInstanceId()}`);
  const theirs = await leaveHelper(other, `ws-${uniqueInstanceId()}`);

  const fresh = await reconcilerAt(t, 0).runOnce();
  expect(fresh.staleHelpers).toBe(0);
  expect((await t.bay.driver.containerStatus(mine)).state).toBe("created");

  const later = await reconcilerAt(t, STALE_HELPER_MS + 60_000).runOnce();
  expect(later.staleHelpers).toBe(1);
  expect((await t.bay.driver.containerStatus(mine)).state).toBe("missing");
  expect((await other.bay.driver.containerStatus(theirs)).state).toBe("created");
});
