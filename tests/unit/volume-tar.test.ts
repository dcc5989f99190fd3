/**
 * The upload tar writer when its consumer fails: a putArchive that errors mid-way
 * (docker-modem unpipes the body and rejects) must not leave the upload's file
 * stream open, the tar writer waiting forever, or an unhandled rejection behind.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { oneFileTar, sendOneFileTar } from "../../src/bay/drivers/docker/volume-tar.ts";

const SIZE = 8 * 1024 * 1024;
let dir: string;
let file: string;
let unhandled: unknown[];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bay-tar-"));
  file = join(dir, "upload.bin");
  await writeFile(file, Buffer.alloc(SIZE, 7));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  unhandled = [];
  process.on("unhandledRejection", onUnhandled);
});
afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
});

/** Accepts `okChunks` chunks, then fails the way a dropped engine request does. */
const failingSink = (okChunks: number) => {
  let seen = 0;
  return new Writable({
    highWaterMark: 1,
    write(_chunk, _enc, cb) {
      seen++;
      if (seen > okChunks) cb(new Error("socket hang up"));
      else cb();
    },
  });
};

/** Resolves once `s` has emitted close, or false after `ms`. */
const closedWithin = (s: { closed?: boolean; once(e: "close", f: () => void): unknown }, ms: number) =>
  new Promise<boolean>((resolve) => {
    if (s.closed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    s.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

/** Pipes like docker-modem: on a request error the body is unpiped and the call rejects. */
const modemLikeSend = (okChunks: number) => (tar: Readable) =>
  new Promise<void>((resolve, reject) => {
    const sink = failingSink(okChunks);
    sink.on("error", (err) => {
      tar.unpipe(sink);
      reject(err);
    });
    sink.on("finish", () => resolve());
    tar.pipe(sink);
  });

describe("oneFileTar when its consumer fails", () => {
  test("a send that fails mid-way rejects, closes the body and the tar, no unhandled rejection", async () => {
    const body = createReadStream(file, { highWaterMark: 64 * 1024 });
    let tar: Readable | undefined;
    const sent = sendOneFileTar({ dirs: [{ name: "a" }, { name: "a/b" }], name: "a/b/up.bin", size: SIZE, body }, (t) => {
      tar = t;
      return modemLikeSend(3)(t);
    });
    await expect(sent).rejects.toThrow("socket hang up");
    expect(await closedWithin(body, 2000)).toBe(true);
    expect(await closedWithin(tar!, 2000)).toBe(true);
    await Bun.sleep(50);
    expect(unhandled).toEqual([]);
  });

  test("a tar destroyed while its writer waits for drain settles the writer and closes the body", async () => {
    const body = createReadStream(file, { highWaterMark: 64 * 1024 });
    const tar = oneFileTar({ dirs: [], name: "up.bin", size: SIZE, body });
    // Read a little, then stop reading (the writer is left waiting for drain) and tear down.
    const it = tar[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    await Bun.sleep(20);
    tar.destroy();
    expect(await closedWithin(body, 2000)).toBe(true);
    await Bun.sleep(50);
    expect(unhandled).toEqual([]);
  });

  test("a tar destroyed before any byte is read closes the body", async () => {
    const body = createReadStream(file, { highWaterMark: 64 * 1024 });
    const tar = oneFileTar({ dirs: [{ name: "d" }], name: "d/up.bin", size: SIZE, body });
    await Bun.sleep(20);
    tar.destroy(new Error("gone"));
    tar.on("error", () => {});
    expect(await closedWithin(body, 2000)).toBe(true);
    await Bun.sleep(50);
    expect(unhandled).toEqual([]);
  });

  test("a consumer that reads everything gets a complete tar", async () => {
    const body = createReadStream(file, { highWaterMark: 64 * 1024 });
    // Parse what comes out: the directory, then the file with its name, header size and every body byte.
    const entries: Array<{ name: string; type: string; size: number; read: number }> = [];
    const extract = tar.extract();
    extract.on("entry", (header, stream, next) => {
      const entry = { name: header.name, type: String(header.type), size: header.size ?? 0, read: 0 };
      entries.push(entry);
      stream.on("data", (c: unknown) => (entry.read += (c as Buffer).byteLength));
      stream.on("end", next);
      stream.resume();
    });
    await pipeline(oneFileTar({ dirs: [{ name: "x" }], name: "x/up.bin", size: SIZE, body }), extract);
    expect(entries.map((e) => e.name.replace(/\/$/, ""))).toEqual(["x", "x/up.bin"]);
    expect(entries[0]!.type).toBe("directory");
    expect(entries[1]).toMatchObject({ type: "file", size: SIZE, read: SIZE });
    expect(unhandled).toEqual([]);
  });

  test("a parent that exists keeps its mode and mtime in the tar; a new one gets 0755, every one uid 1000", async () => {
    const headers: tar.Header[] = [];
    const extract = tar.extract();
    extract.on("entry", (header, stream, next) => {
      headers.push(header);
      stream.on("end", next);
      stream.resume();
    });
    const kept = new Date("2026-01-02T03:04:05Z");
    const dirs = [{ name: "old", mode: 0o1750, mtime: kept }, { name: "old/new" }];
    await pipeline(oneFileTar({ dirs, name: "old/new/f", size: 1, body: new Uint8Array([1]) }), extract);
    expect(headers.map((h) => [h.name, h.type, h.mode, h.uid, h.gid])).toEqual([
      ["old/", "directory", 0o1750, 1000, 1000],
      ["old/new/", "directory", 0o755, 1000, 1000],
      ["old/new/f", "file", 0o644, 1000, 1000],
    ]);
    expect(headers[0]!.mtime?.getTime()).toBe(kept.getTime());
  });
});
