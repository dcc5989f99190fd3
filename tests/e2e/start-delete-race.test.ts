/**
 * A delete that lands while a sandbox's first start runs, on the real engine: Docker
 * makes a named volume again for a container that mounts a removed one, so a delete
 * between the start's volume and its container used to leave a `ws-…` volume without
 * Bay's labels, which nothing ever removed (a security review found 11 in 20 rounds).
 * After each round here, nothing of the sandbox is left: no container, no volume.
 */
import { afterAll, expect, test } from "bun:test";
import { pollUntil } from "../support/harness.ts";
import { docker } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import type { TestBay } from "../support/harness.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));
const workspaces: string[] = [];

const volumeExists = (name: string) =>
  docker
    .getVolume(name)
    .inspect()
    .then(
      () => true,
      () => false,
    );

afterAll(async () => {
  // Whatever a failed round left is removed, so the engine stays clean for the next files.
  for (const ws of workspaces)
    await docker
      .getVolume(ws)
      .remove()
      .catch(() => {});
});

test("deletes 0-40 ms after the first exec leave no container and no volume, labelled or not", async () => {
  for (const delay of [0, 10, 20, 30, 40, 5, 15, 25]) {
    const id = (await t.json("POST", "/v1/sandboxes", { body: {} })).body.id as string;
    const ws = (await t.json("GET", `/v1/sandboxes/${id}`)).body.workspace_id as string;
    workspaces.push(ws);
    const [exec, del] = await Promise.all([
      t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "1" } }),
      Bun.sleep(delay).then(() => t.json("DELETE", `/v1/sandboxes/${id}`)),
    ]);
    expect(del.status).toBe(204);
    expect([200, 404, 409, 503]).toContain(exec.status);
    await pollUntil(
      () => t.bay.driver.listContainers({ sandbox_id: id }),
      (c) => c.length === 0,
      15_000,
      `no container (delay ${delay})`,
    );
    await pollUntil(
      () => volumeExists(ws),
      (exists) => !exists,
      15_000,
      `volume ${ws} gone (delay ${delay})`,
    );
  }
}, 180_000);
