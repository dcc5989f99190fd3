/**
 * VolumeFiles contract: the same cases run against every implementation in IMPLS
 * (kysely-style), so the in-memory one a fast driver will use answers exactly as
 * Docker does. Each brings what the interface cannot do itself: plant a symlink or a
 * FIFO the way user code would, and report what a call left behind (helper
 * containers on Docker). Docker runs on the real engine with the real helper image.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import Docker from "dockerode";
import { zErrorBody } from "../../src/bay/api/generated/index.ts";
import { DockerDriver } from "../../src/bay/drivers/docker/docker-driver.ts";
import type { FileStat, VolumeFiles, VolumeRef } from "../../src/bay/drivers/driver.ts";
import { MemoryVolumeFiles } from "../../src/bay/drivers/memory/volume-files.ts";
import { BayError } from "../../src/bay/errors.ts";
import { NOT_A_DIRECTORY_REASON } from "../../src/protocol/ship/constants.ts";
import { removeLabelled } from "../e2e/support/docker-fixtures.ts";
import { chunkOf, requireShipImages } from "../e2e/support/e2e.ts";
import { pollUntil } from "../support/harness.ts";
import { SHIP_IMAGE } from "../support/images.ts";
import { shellOnVolume } from "../support/volume-shell.ts";

interface Impl {
  name: string;
  setup(): Promise<void>;
  files(): VolumeFiles;
  /** Makes a symlink at `path` to `target`, as `ln -s` in user code would. */
  symlink(volume: VolumeRef, path: string, target: string): Promise<void>;
  /** Makes a FIFO at `path`. */
  fifo(volume: VolumeRef, path: string): Promise<void>;
  /** What calls left behind (helper containers); must be nothing once a call has answered. */
  leftovers(): Promise<string[]>;
  cleanup(): Promise<void>;
}

const RUN = crypto.randomUUID().slice(0, 8);
const INSTANCE_ID = `test-vf-${RUN}`;
const TEST_LABEL = { "bay.test": "volume-files", "bay.instance_id": INSTANCE_ID };
const docker = new Docker({ socketPath: "/var/run/docker.sock" });

const dockerImpl = (): Impl => {
  let driver: DockerDriver | undefined;
  const shell = async (volume: VolumeRef, script: string) => {
    const r = await shellOnVolume(docker, volume.name, script, TEST_LABEL);
    if (r.exitCode !== 0) throw new Error(`planting failed (${r.exitCode}): ${r.output}`);
  };
  return {
    name: "docker",
    setup: () => requireShipImages(),
    files: () => {
      driver ??= new DockerDriver({
        socketPath: "/var/run/docker.sock",
        connectMode: "host_port",
        defaultPidsLimit: 64,
        extraLabels: { test: "volume-files" },
        volumeFiles: { helperImage: SHIP_IMAGE },
      });
      return driver.volumeFiles;
    },
    symlink: (volume, path, target) => shell(volume, `ln -s '${target}' '${path}'`),
    fifo: (volume, path) => shell(volume, `mkfifo '${path}'`),
    leftovers: async () =>
      (await docker.listContainers({ all: true, filters: { label: ["bay.role=workspace-helper", `bay.instance_id=${INSTANCE_ID}`] } })).map(
        (c) => c.Id,
      ),
    cleanup: () => removeLabelled(docker, TEST_LABEL),
  };
};

const memoryImpl = (): Impl => {
  const files = new MemoryVolumeFiles();
  const ensure = (volume: VolumeRef) => files.createVolume(volume.name, volume.labels);
  return {
    name: "memory",
    setup: async () => {},
    files: () => files,
    symlink: async (volume, path, target) => {
      ensure(volume);
      files.plantSymlink(volume.name, path, target);
    },
    fifo: async (volume, path) => {
      ensure(volume);
      files.plantSpecial(volume.name, path);
    },
    leftovers: async () => [],
    cleanup: async () => {},
  };
};

const IMPLS: Impl[] = [dockerImpl(), memoryImpl()];

let seq = 0;
const newVolume = (): VolumeRef => ({
  name: `bay-test-vf-${RUN}-${++seq}`,
  labels: { owner: "tester", workspace_id: `ws-vf-${RUN}-${seq}`, instance_id: INSTANCE_ID, workspace_kind: "external" },
});

const text = (s: string) => new TextEncoder().encode(s);
const LIST = { maxEntries: 100, timeoutMs: 60_000 };

async function bytesOf(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** The BayError a promise rejects with, its details as the spec types them; fails the test when it resolves. */
async function errorOf(p: Promise<unknown>): Promise<BayError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BayError);
    const e = err as BayError;
    const body = { error: { code: e.code, message: e.message, request_id: "r", details: e.details } };
    expect({ body, valid: zErrorBody.safeParse(body).success }).toEqual({ body, valid: true });
    return e;
  }
  throw new Error("expected a BayError, but the call succeeded");
}

const brief = (s: FileStat | null) => (s ? { name: s.name, kind: s.kind, size: s.size } : null);

for (const impl of IMPLS) {
  describe(`VolumeFiles contract: ${impl.name}`, () => {
    let files: VolumeFiles;
    const write = (v: VolumeRef, path: string, data: string | Uint8Array) => {
      const bytes = typeof data === "string" ? text(data) : data;
      return files.write(v, path, { size: bytes.byteLength, bytes });
    };
    const readText = async (v: VolumeRef, path: string) => new TextDecoder().decode(await bytesOf((await files.read(v, path)).body));

    beforeAll(async () => {
      await impl.setup();
      files = impl.files();
    });
    afterEach(async () => {
      // Helpers are removed before a call answers, a read's when its stream ends.
      const left = await pollUntil(impl.leftovers, (l) => l.length === 0, 15_000).catch(() => impl.leftovers());
      expect(left).toEqual([]);
    });
    afterAll(() => impl.cleanup());

    test("write then read: every byte back, parents created, stat of the file, its parents and the root", async () => {
      const v = newVolume();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const before = Date.now();
      await write(v, "a/b/c.bin", all);
      const opened = await files.read(v, "a/b/c.bin");
      expect(brief(opened.stat)).toEqual({ name: "c.bin", kind: "file", size: 256 });
      expect(await bytesOf(opened.body)).toEqual(all);

      const stat = await files.stat(v, "a/b/c.bin");
      expect(brief(stat)).toEqual({ name: "c.bin", kind: "file", size: 256 });
      expect(Math.abs(stat!.modifiedAt - before)).toBeLessThan(5 * 60_000);
      expect(brief(await files.stat(v, "a"))).toEqual({ name: "a", kind: "directory", size: 0 });
      expect(brief(await files.stat(v, "a/b"))).toEqual({ name: "b", kind: "directory", size: 0 });
      expect(brief(await files.stat(v, "."))).toEqual({ name: ".", kind: "directory", size: 0 });
    });

    test("write replaces a file; a streamed body of exactly its size; an empty file", async () => {
      const v = newVolume();
      await write(v, "x.txt", "first version");
      await write(v, "x.txt", "second");
      expect(await readText(v, "x.txt")).toBe("second");

      const size = 3 * 1024 * 1024 + 5;
      const data = chunkOf(5, size);
      async function* chunks() {
        for (let at = 0; at < size; at += 64 * 1024) yield data.subarray(at, Math.min(size, at + 64 * 1024));
      }
      await files.write(v, "big/streamed.bin", { size, bytes: chunks() });
      const opened = await files.read(v, "big/streamed.bin");
      expect(opened.stat.size).toBe(size);
      expect(Bun.hash(await bytesOf(opened.body))).toBe(Bun.hash(data));

      await write(v, "empty", "");
      const empty = await files.read(v, "empty");
      expect(empty.stat.size).toBe(0);
      expect((await bytesOf(empty.body)).byteLength).toBe(0);
    });

    test("a streamed body shorter than its stated size is refused", async () => {
      const v = newVolume();
      async function* short() {
        yield text("only this");
      }
      const err = await errorOf(files.write(v, "short.txt", { size: 1000, bytes: short() }));
      expect(err.code).toBe("internal_error");
    });

    test("list: the immediate children sorted by name, each with its kind and size", async () => {
      const v = newVolume();
      await write(v, "d/b.txt", "bbb");
      await write(v, "d/a b.txt", "a");
      await write(v, "d/é.txt", "é");
      await write(v, "d/sub/deep.txt", "not listed");
      await write(v, "d/new\nline", "n");
      await write(v, `d/${"x".repeat(255)}`, "long name");
      await impl.symlink(v, "d/link", "/etc");
      await impl.fifo(v, "d/pipe");

      const { entries, truncated } = await files.list(v, "d", LIST);
      expect(truncated).toBe(false);
      expect(entries.map((e) => [e.name, e.kind, e.size])).toEqual([
        ["a b.txt", "file", 1],
        ["b.txt", "file", 3],
        ["link", "symlink", 4],
        ["new\nline", "file", 1],
        ["pipe", "other", 0],
        ["sub", "directory", 0],
        ["x".repeat(255), "file", 9],
        ["é.txt", "file", 2],
      ]);
      expect(entries.every((e) => Math.abs(e.modifiedAt - Date.now()) < 5 * 60_000)).toBe(true);
      expect((await files.list(v, ".", LIST)).entries.map((e) => e.name)).toEqual(["d"]);
      expect((await files.list(v, "d/sub", LIST)).entries.map((e) => e.name)).toEqual(["deep.txt"]);

      const few = await files.list(v, "d", { maxEntries: 3, timeoutMs: 60_000 });
      expect(few.truncated).toBe(true);
      expect(few.entries).toHaveLength(3);
      const names = few.entries.map((e) => e.name);
      expect(names).toEqual([...names].sort());
    });

    test("a volume that does not exist yet is created, empty, on first use", async () => {
      const v = newVolume();
      expect(brief(await files.stat(v, "."))).toEqual({ name: ".", kind: "directory", size: 0 });
      expect(await files.list(v, ".", LIST)).toEqual({ entries: [], truncated: false });
      expect(await files.usage(newVolume())).toBeLessThan(64 * 1024);
    });

    test("missing paths answer file_not_found; stat answers null", async () => {
      const v = newVolume();
      await write(v, "here.txt", "x");
      for (const path of ["nope", "nope/deeper/x"]) {
        expect((await errorOf(files.read(v, path))).code).toBe("file_not_found");
        expect((await errorOf(files.list(v, path, LIST))).code).toBe("file_not_found");
        expect((await errorOf(files.remove(v, path))).code).toBe("file_not_found");
        expect(await files.stat(v, path)).toBeNull();
      }
    });

    test("the wrong kind of entry answers validation_error", async () => {
      const v = newVolume();
      await write(v, "dir/f.txt", "x");
      await impl.fifo(v, "dir/pipe");
      expect((await errorOf(files.read(v, "dir"))).code).toBe("validation_error");
      expect((await errorOf(files.read(v, "."))).code).toBe("validation_error");
      expect((await errorOf(files.read(v, "dir/pipe"))).code).toBe("validation_error");
      expect((await errorOf(files.list(v, "dir/f.txt", LIST))).code).toBe("validation_error");
      expect((await errorOf(write(v, "dir", "onto a directory"))).code).toBe("validation_error");
      expect((await errorOf(write(v, "dir/pipe", "onto a fifo"))).code).toBe("validation_error");
      expect(await readText(v, "dir/f.txt")).toBe("x");
    });

    test("a parent that is a file answers invalid_path on every call", async () => {
      const v = newVolume();
      await write(v, "f.txt", "x");
      const calls: Array<[string, () => Promise<unknown>]> = [
        ["read", () => files.read(v, "f.txt/x")],
        ["write", () => write(v, "f.txt/x/y", "y")],
        ["list", () => files.list(v, "f.txt/x", LIST)],
        ["stat", () => files.stat(v, "f.txt/x")],
        ["remove", () => files.remove(v, "f.txt/x")],
      ];
      for (const [name, call] of calls) {
        const err = await errorOf(call());
        expect({ name, code: err.code, reason: err.details.reason }).toEqual({
          name,
          code: "invalid_path",
          reason: "a parent is not a directory",
        });
      }
      expect(await readText(v, "f.txt")).toBe("x");
    });

    test("symlinks are never followed: on the way or at the end; remove takes the link itself", async () => {
      const v = newVolume();
      await write(v, "real/inside.txt", "in");
      await impl.symlink(v, "alias", "real");
      await impl.symlink(v, "etc", "/etc");
      await impl.symlink(v, "pw", "/etc/passwd");
      const refused: Array<[string, () => Promise<unknown>]> = [
        ["read through a link", () => files.read(v, "alias/inside.txt")],
        ["read out of the volume", () => files.read(v, "etc/passwd")],
        ["read a link", () => files.read(v, "pw")],
        ["write through a link", () => write(v, "alias/new.txt", "x")],
        ["write onto a link", () => write(v, "pw", "x")],
        ["list a link", () => files.list(v, "etc", LIST)],
        ["list through a link", () => files.list(v, "alias", LIST)],
        ["stat through a link", () => files.stat(v, "alias/inside.txt")],
        ["remove through a link", () => files.remove(v, "etc/passwd")],
      ];
      for (const [name, call] of refused) {
        const err = await errorOf(call());
        expect({ name, code: err.code, reason: err.details.reason }).toEqual({ name, code: "invalid_path", reason: "symlink" });
      }
      expect(brief(await files.stat(v, "alias"))).toEqual({ name: "alias", kind: "symlink", size: 4 });
      await files.remove(v, "alias");
      expect(await files.stat(v, "alias")).toBeNull();
      expect(await readText(v, "real/inside.txt")).toBe("in");
      expect((await files.list(v, ".", LIST)).entries.map((e) => e.name)).toEqual(["etc", "pw", "real"]);
    });

    test("remove: a file, a whole tree; the root is refused", async () => {
      const v = newVolume();
      await write(v, "t/a.txt", "a");
      await write(v, "t/sub/b.txt", "b");
      await write(v, "keep.txt", "k");
      await files.remove(v, "t/a.txt");
      expect(await files.stat(v, "t/a.txt")).toBeNull();
      await files.remove(v, "t");
      expect(await files.stat(v, "t")).toBeNull();
      expect((await errorOf(files.remove(v, "."))).code).toBe("invalid_path");
      expect((await errorOf(write(v, ".", "x"))).code).toBe("invalid_path");
      expect((await files.list(v, ".", LIST)).entries.map((e) => e.name)).toEqual(["keep.txt"]);
    });

    test("remove with `directory` (a path that ended in /): only a directory goes; a file or a link there is invalid_path", async () => {
      const v = newVolume();
      await write(v, "d/sub/f.txt", "f");
      await impl.symlink(v, "lnk", "d");
      for (const path of ["d/sub/f.txt", "lnk"]) {
        const err = await errorOf(files.remove(v, path, { directory: true }));
        expect({ path, code: err.code, reason: err.details.reason }).toEqual({
          path,
          code: "invalid_path",
          reason: NOT_A_DIRECTORY_REASON,
        });
      }
      expect((await errorOf(files.remove(v, "nope", { directory: true }))).code).toBe("file_not_found");
      expect(await readText(v, "d/sub/f.txt")).toBe("f");
      expect(brief(await files.stat(v, "lnk"))).toMatchObject({ kind: "symlink" });
      await files.remove(v, "d/sub", { directory: true });
      expect(await files.stat(v, "d/sub")).toBeNull();
      expect(brief(await files.stat(v, "d"))).toMatchObject({ kind: "directory" });
    });

    test("usage grows by what is written and shrinks by what is removed", async () => {
      const v = newVolume();
      await write(v, "seed.txt", "s");
      const before = await files.usage(v);
      const size = 300 * 1024;
      await write(v, "data/blob.bin", chunkOf(9, size));
      const after = await files.usage(v);
      expect(after - before).toBeGreaterThanOrEqual(size);
      expect(after - before).toBeLessThan(size + 64 * 1024);
      await files.remove(v, "data");
      expect(await files.usage(v)).toBeLessThan(before + 64 * 1024);
    });

    test("a read cancelled midway, or never read, lets go of everything", async () => {
      const v = newVolume();
      await write(v, "big.bin", chunkOf(3, 4 * 1024 * 1024));
      const opened = await files.read(v, "big.bin");
      const reader = opened.body.getReader();
      expect((await reader.read()).value!.byteLength).toBeGreaterThan(0);
      await reader.cancel();
      await (await files.read(v, "big.bin")).body.cancel();
    });

    test("deep paths and long segments", async () => {
      const v = newVolume();
      const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join("/");
      await write(v, `${deep}/${"y".repeat(255)}`, "deep");
      expect(await readText(v, `${deep}/${"y".repeat(255)}`)).toBe("deep");
      expect((await files.list(v, deep, LIST)).entries.map((e) => e.name)).toEqual(["y".repeat(255)]);
      await files.remove(v, "d0");
      expect(await files.list(v, ".", LIST)).toEqual({ entries: [], truncated: false });
    });
  });
}
