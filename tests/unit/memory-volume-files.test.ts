/**
 * What the in-memory VolumeFiles offers an in-memory driver beyond the contract
 * (tests/contract runs the contract itself): volumes created once with their
 * labels, listed, and dropped with everything in them.
 */
import { expect, test } from "bun:test";
import { MemoryVolumeFiles } from "../../src/bay/drivers/memory/volume-files.ts";

const labels = { owner: "o", workspace_id: "ws-1", instance_id: "i", workspace_kind: "external" };
const ref = { name: "vol-1", labels };

test("a volume is created once, with the labels of its first use, listed, and dropped with its files", async () => {
  const files = new MemoryVolumeFiles(() => 1_700_000_000_000);
  expect(files.existingVolumes()).toEqual([]);
  await files.write(ref, "a/b.txt", { size: 2, bytes: new TextEncoder().encode("hi") });
  files.createVolume("vol-1", { ...labels, owner: "someone else" });
  expect(files.existingVolumes()).toEqual([{ name: "vol-1", labels }]);
  expect((await files.stat(ref, "a/b.txt"))?.modifiedAt).toBe(1_700_000_000_000);

  expect(files.dropVolume("vol-1")).toBe(true);
  expect(files.dropVolume("vol-1")).toBe(false);
  expect(files.existingVolumes()).toEqual([]);
  // A later use starts from an empty volume again.
  expect(await files.stat(ref, "a/b.txt")).toBeNull();
});

test("planting needs an existing volume and parent", () => {
  const files = new MemoryVolumeFiles();
  expect(() => files.plantSymlink("nope", "l", "/etc")).toThrow();
  files.createVolume("v", labels);
  expect(() => files.plantSpecial("v", "missing/p")).toThrow();
});
