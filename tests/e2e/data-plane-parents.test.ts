/**
 * A workspace write whose parent directory is deleted between the data plane's
 * walk and its put (a sandbox or another call deleting it at that moment): the
 * engine recreates a parent the archive does not list as root, which left a
 * directory in the workspace that neither the sandbox user nor the data plane
 * could change or delete any more. Every parent now travels in the archive, the
 * existing ones with their own mode. The race is made deterministic by deleting
 * the parent right after the walk.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import Docker from "dockerode";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import type { DockerVolumeFiles } from "../../src/bay/drivers/docker/volume-files.ts";
import type { VolumeRef } from "../../src/bay/drivers/driver.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { shellOnVolume } from "../support/volume-shell.ts";
import { removeLabelled } from "./support/docker-fixtures.ts";
import { requireShipImages } from "./support/e2e.ts";

const RUN = crypto.randomUUID().slice(0, 8);
const INSTANCE_ID = `test-parents-${RUN}`;
const LABELS = { "bay.test": "data-plane-parents", "bay.instance_id": INSTANCE_ID };
const docker = new Docker({ socketPath: "/var/run/docker.sock" });
let files: DockerVolumeFiles;

const volume: VolumeRef = {
  name: `ws-parents-${RUN}`,
  labels: { owner: "tester", workspace_id: `ws-parents-${RUN}`, instance_id: INSTANCE_ID, workspace_kind: "external" },
};

const shell = async (script: string) => {
  const r = await shellOnVolume(docker, volume.name, script, LABELS);
  expect({ code: r.exitCode, output: r.output }).toMatchObject({ code: 0 });
  // Docker's log frames (stream byte, three zeros, four length bytes) before each chunk.
  return r.output.replace(/[\x01\x02]\x00\x00\x00[\s\S]{4}/g, "");
};

beforeAll(async () => {
  await requireShipImages();
  const driver = new DockerDriver({
    socketPath: "/var/run/docker.sock",
    connectMode: "host_port",
    defaultPidsLimit: 64,
    extraLabels: { test: "data-plane-parents" },
    volumeFiles: { helperImage: SHIP_IMAGE },
  });
  await driver.createVolume(volume.name, volume.labels);
  files = driver.volumeFiles as DockerVolumeFiles;
});

afterAll(async () => {
  await removeLabelled(docker, LABELS);
  await docker
    .getVolume(volume.name)
    .remove()
    .catch(() => {});
});

test("a parent deleted between walk and put comes back owned by uid 1000, and stays usable", async () => {
  await shell("mkdir -p a/b && chmod 750 a && touch a/b/old");
  // Right after the walk found a/ and a/b/, they are deleted, as a concurrent delete would.
  const patched = files as unknown as { walk: (...args: unknown[]) => Promise<unknown> };
  const walk = patched.walk.bind(files);
  patched.walk = async (...args: unknown[]) => {
    const walked = await walk(...args);
    await shell("rm -rf a");
    return walked;
  };
  try {
    await files.write(volume, "a/b/new.txt", { size: 2, bytes: new TextEncoder().encode("hi") });
  } finally {
    patched.walk = walk;
  }
  // uid:gid and mode of each parent, then the file: nothing owned by root.
  const owners = await shell("stat -c '%n %u:%g %a' a a/b a/b/new.txt");
  expect(owners.trim().split("\n")).toEqual(["a 1000:1000 750", "a/b 1000:1000 755", "a/b/new.txt 1000:1000 644"]);
  // The sandbox user can still write and delete there.
  await shell("touch a/b/mine && rm -rf a");
});

test("an existing parent keeps its mode through a write", async () => {
  await shell("mkdir -p keep && chmod 700 keep");
  await files.write(volume, "keep/f.txt", { size: 1, bytes: new Uint8Array([65]) });
  expect((await shell("stat -c '%u %a' keep")).trim()).toBe("1000 700");
});
