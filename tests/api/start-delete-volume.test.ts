/**
 * A delete that lands while a sandbox's first start is between creating its workspace
 * volume and creating its container: the delete removes the volume, and the engine
 * makes it again for the container's mount (Docker does; so does the memory driver).
 * The volume made again carries Bay's labels (reconcile knows it), and the failed start
 * removes it at once: nothing of the sandbox is left.
 */
import { afterEach, expect, test } from "bun:test";
import type { ContainerSpec } from "../../src/bay/drivers/driver.ts";
import { createMemoryBay, type MemoryBay } from "./support/memory-bay.ts";

const open: MemoryBay[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

test("the start fails as superseded, and neither a container nor the volume is left, labelled or not", async () => {
  const t = await createMemoryBay();
  open.push(t);
  const id = (await t.json("POST", "/v1/sandboxes", { body: {} })).body.id as string;
  const workspace = (await t.json("GET", `/v1/sandboxes/${id}`)).body.workspace_id as string;
  const engine = t.engine;
  const create = engine.createContainer.bind(engine);
  let mounted: ContainerSpec | undefined;
  engine.createContainer = async (spec: ContainerSpec) => {
    // The delete lands now: after the start made the volume, before the container mounts it.
    expect((await t.json("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    expect(await engine.listVolumes({ workspace_id: workspace })).toEqual([]);
    mounted = spec;
    return create(spec);
  };
  const exec = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "1" } });
  expect([404, 409]).toContain(exec.status);
  // The mount named Bay's labels, so a volume the engine made for it would be Bay's.
  expect(mounted?.volumeLabels).toMatchObject({ workspace_id: workspace, instance_id: expect.any(String), workspace_kind: "managed" });
  expect(await engine.listContainers({ sandbox_id: id })).toEqual([]);
  expect(engine.volumeNames()).not.toContain(workspace);
});
