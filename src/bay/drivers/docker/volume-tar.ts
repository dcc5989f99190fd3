/**
 * The tar side of the Docker data plane: building the one-file archives put into
 * a volume through the engine's archive API, and streaming the one file of an
 * archive the engine hands back, without holding either whole.
 */
import { Readable } from "node:stream";
import tar from "tar-stream";
import { BayError } from "../../errors.ts";
import { relayed } from "../../relayed-bytes.ts";
import { fileErrors } from "../volume-walk.ts";

/** Owner of everything Bay writes: Ship's unprivileged user. */
export const WORKSPACE_UID = 1000;
export const WORKSPACE_GID = 1000;
const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

/** A tar header as tar-stream reports it. */
export type TarHeader = tar.Header;
/** A tar entry being written (a streamx Writable). */
type TarSink = ReturnType<tar.Pack["entry"]>;

/** A directory entry of the tar: one that exists keeps its mode and mtime, a new one gets 0755 and now. */
export interface TarDir {
  name: string;
  mode?: number;
  mtime?: Date;
}

export interface OneFileTar {
  /**
   * Every parent directory of the file (relative, outermost first). The engine
   * creates a parent the archive does not list as root, so one that vanishes
   * between the walk and the put would come back owned by root.
   */
  dirs: TarDir[];
  /** Relative file name inside the extraction directory. */
  name: string;
  size: number;
  body: Uint8Array | AsyncIterable<Uint8Array>;
}

/** Waits for `entry` to drain; rejects instead if it is closed or fails first (it never drains then). */
function drained(entry: TarSink): Promise<void> {
  if (entry.destroying || entry.destroyed) return Promise.reject(new Error("tar entry closed before its end"));
  return new Promise<void>((resolve, reject) => {
    const settle = (err?: Error) => {
      entry.off("drain", onDrain);
      entry.off("close", onClose);
      entry.off("error", onError);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(new Error("tar entry closed before its end"));
    const onError = (err: Error) => settle(err);
    entry.on("drain", onDrain);
    entry.on("close", onClose);
    entry.on("error", onError);
  });
}

/**
 * A tar with the parent directories and one file (0644), all owned by uid/gid
 * 1000, streamed as it is read: the file body is never held whole.
 * Destroying the returned stream tears the writer down and stops reading the body.
 */
export function oneFileTar(spec: OneFileTar): Readable {
  const pack = tar.pack();
  // Errors reach the consumer through the returned stream; this keeps a destroyed pack from throwing.
  pack.on("error", () => {});
  const mtime = new Date();
  const owner = { uid: WORKSPACE_UID, gid: WORKSPACE_GID, uname: "ship", gname: "ship", mtime };
  const fill = async () => {
    for (const dir of spec.dirs) {
      const header = { ...owner, name: `${dir.name}/`, type: "directory" as const, mode: dir.mode ?? DIR_MODE, mtime: dir.mtime ?? mtime };
      await new Promise<void>((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
    }
    const header = { ...owner, name: spec.name, type: "file" as const, mode: FILE_MODE, size: spec.size };
    if (spec.body instanceof Uint8Array) {
      const bytes = Buffer.from(spec.body.buffer, spec.body.byteOffset, spec.body.byteLength);
      await new Promise<void>((resolve, reject) => pack.entry(header, bytes, (err) => (err ? reject(err) : resolve())));
    } else {
      let done!: (err?: Error | null) => void;
      const finished = new Promise<void>((resolve, reject) => (done = (err) => (err ? reject(err) : resolve())));
      // A destroyed pack fails the entry while the loop below may still be running:
      // the rejection is awaited at the end (or surfaced by the loop), never left unhandled.
      finished.catch(() => {});
      const entry = pack.entry(header, (err) => done(err));
      entry.on("error", () => {});
      let written = 0;
      // Leaving this loop early (a throw) closes the body (its iterator's return()).
      for await (const chunk of spec.body) {
        written += chunk.byteLength;
        if (!entry.write(chunk)) await drained(entry);
      }
      if (written !== spec.size) throw new BayError("internal_error", `upload changed size while streaming (${written} != ${spec.size})`);
      entry.end(undefined);
      await finished;
    }
    pack.finalize();
  };
  fill().catch((err) => pack.destroy(err));
  const out = Readable.from(pack);
  // A consumer that gives up (e.g. a failed putArchive) destroys `out`: make sure the pack, and so the writer, follows.
  out.once("close", () => {
    if (!pack.destroying) pack.destroy(new Error("tar stream closed before its end"));
  });
  return out;
}

/**
 * Sends a one-file tar through `send` (e.g. a putArchive). If the send fails, the
 * tar is destroyed, so the writer stops and the body is no longer read.
 */
export async function sendOneFileTar(spec: OneFileTar, send: (tar: Readable) => Promise<void>): Promise<void> {
  const stream = oneFileTar(spec);
  try {
    await send(stream);
  } catch (err) {
    stream.destroy();
    throw err;
  }
}

function extractOf(stream: NodeJS.ReadableStream): tar.Extract {
  const extract = tar.extract();
  const source = stream as NodeJS.ReadableStream & { destroy?(err?: Error): void };
  source.on("error", (err: Error) => extract.destroy(err));
  // tar-stream is built on streamx, whose Writable a Node stream can pipe into.
  source.pipe(extract as unknown as NodeJS.WritableStream);
  return extract;
}

/** Stops reading an engine stream early (the rest is not needed). */
function abandon(stream: NodeJS.ReadableStream, extract: tar.Extract): void {
  (stream as NodeJS.ReadableStream & { destroy?(): void }).destroy?.();
  extract.destroy();
}

/** Refuses an entry that is not a regular file: it was swapped since the path was walked. */
function assertRegularFile(header: TarHeader, path: string): void {
  if (header.type === "symlink" || header.type === "link") throw fileErrors.symlink(path, path);
  if (header.type === "directory") throw fileErrors.isDirectory(path);
  if (header.type !== "file" && header.type !== "contiguous-file") throw fileErrors.notRegularFile(path);
}

/**
 * The first entry of an archive, which must be a regular file: its size (from its
 * header, so it matches the bytes that follow) and its bytes as a web stream.
 * `onDone` runs exactly once: when this throws, or when the stream fails, is
 * cancelled or has given its last byte; the stream only closes after `onDone` has
 * settled (so a reader that reads to the end knows the caller has let go).
 */
export async function streamFirstFile(
  stream: NodeJS.ReadableStream,
  path: string,
  onDone: () => Promise<void> | void,
): Promise<{ size: number; body: ReadableStream<Uint8Array> }> {
  const extract = extractOf(stream);
  const entries = extract[Symbol.asyncIterator]();
  let finished: Promise<void> | undefined;
  const finish = () => {
    finished ??= (async () => {
      abandon(stream, extract);
      await onDone();
    })();
    return finished;
  };
  try {
    const first = await entries.next();
    if (first.done) throw fileErrors.notFound(path);
    assertRegularFile(first.value.header, path);
    const size = first.value.header.size ?? 0;
    const chunks = first.value[Symbol.asyncIterator]();
    let sent = 0;
    // The engine's tar ended before the file did (it changed under the read, or the engine failed).
    const cut = (err: unknown) =>
      new BayError("internal_error", "workspace read failed: the transfer was cut", {
        internal: { operation: "workspace read", path, sent, size, cut: true, error: err instanceof Error ? err.message : String(err) },
        cause: err,
      });
    // The first chunk is read before the answer is given, so a transfer cut at once is an error answer
    // (and tried again, volume-files.ts), not a 200 whose body breaks.
    let prefetched: Promise<IteratorResult<unknown>> | undefined;
    if (size > 0) {
      const head = await chunks.next().catch((err) => {
        throw cut(err);
      });
      prefetched = Promise.resolve(head);
    }
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        let next: IteratorResult<unknown>;
        try {
          next = await (prefetched ?? chunks.next());
          prefetched = undefined;
        } catch (err) {
          ctrl.error(cut(err));
          await finish();
          return;
        }
        if (!next.done) {
          const chunk = next.value as Buffer;
          ctrl.enqueue(chunk);
          sent += chunk.byteLength;
          relayed(chunk.byteLength);
        }
        // A reader that got Content-Length bytes may never pull again: finish on the last byte.
        if (next.done || sent >= size) {
          await finish();
          ctrl.close();
        }
      },
      cancel() {
        return finish();
      },
    });
    return { size, body };
  } catch (err) {
    await finish();
    throw err;
  }
}
