import { randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { lstat, open, realpath, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ShipError } from "../errors.ts";
import { O, openInside, openParentDir, type ParentDir, pathError, resolveExisting, resolveWorkspacePath, rootRefused } from "../paths.ts";

/** Body bytes accepted on top of the file limit (none are needed: the body is the file). */
export const UPLOAD_OVERHEAD_BYTES = 64 * 1024;
/** Default: abort an upload when no bytes arrive for this long. */
export const UPLOAD_IDLE_MS = 60_000;

function tooLarge(limit: number): ShipError {
  return new ShipError("payload_too_large", `upload is larger than ${limit} bytes`, { details: { limit } });
}

/** Reads the next chunk, or throws `timeout` after `idleMs` of silence. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number,
): ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new ShipError("timeout", `upload stalled: no data for ${Math.round(idleMs / 1000)}s`, { details: { idle_seconds: idleMs / 1000 } }),
      );
    }, idleMs);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Receives an upload whose body is the file's bytes: they are streamed to a
 * temporary file inside the workspace, then renamed into place inside the checked
 * parent directory of `path`. A body that stalls for `idleMs`, ends early or
 * crosses `maxBytes` leaves nothing behind.
 */
export async function receiveUpload(
  workspace: string,
  request: Request,
  path: string,
  maxBytes: number,
  options: { idleMs?: number } = {},
): Promise<{ status: "ok"; path: string; size: number }> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  // The path is checked before a byte is stored.
  const target = await resolveWorkspacePath(workspace, path);
  if (target.relative === ".") throw rootRefused();

  const root = await realpath(workspace);
  const temp = join(root, `.ship-upload-${randomBytes(6).toString("hex")}.tmp`);
  let handle: FileHandle | null = null;
  let size = 0;
  const reader = request.body?.getReader();
  try {
    // The spool file lives in the root: a root code in the sandbox made read-only, or a full
    // disk, is the target's refusal (permission denied, no space), not Ship failing.
    handle = await open(temp, "wx", 0o644).catch((err) => {
      throw pathError(err, target.relative);
    });
    if (reader) {
      const idleMs = options.idleMs ?? UPLOAD_IDLE_MS;
      for (;;) {
        const { done, value } = await readWithin(reader, idleMs);
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) throw tooLarge(maxBytes);
        await handle.write(value).catch((err) => {
          throw pathError(err, target.relative);
        });
      }
    }
    await handle.close();
    handle = null;
    const parent = await openParentDir(target, { create: true });
    try {
      await refuseDirectory(parent, target.relative);
      await rename(temp, parent.entry).catch((err) => {
        throw pathError(err, target.relative);
      });
    } finally {
      await parent.handle.close();
    }
    return { status: "ok", path: target.relative, size };
  } catch (err) {
    await reader?.cancel().catch(() => {});
    await (handle as FileHandle | null)?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  }
}

/**
 * The refusal an upload to `path` would meet on the disk as it is (its path rule,
 * a parent that is not a directory, a target that is one), found without writing
 * or creating anything: a missing parent is no refusal, as an upload creates it.
 */
export async function checkUploadTarget(workspace: string, path: string): Promise<void> {
  try {
    const target = await resolveWorkspacePath(workspace, path);
    if (target.relative === ".") throw rootRefused();
    if (!target.exists && !(await parentExists(target.absolute))) return;
    const parent = await openParentDir(target);
    try {
      await refuseDirectory(parent, target.relative);
    } finally {
      await parent.handle.close();
    }
  } catch (err) {
    // Something removed on the way since it was seen: an upload creates what is missing.
    if (err instanceof ShipError && err.code === "file_not_found") return;
    throw err;
  }
}

/** Whether the directory an absolute path would be created in is there. */
const parentExists = (absolute: string): Promise<boolean> =>
  lstat(dirname(absolute)).then(
    () => true,
    () => false,
  );

/** An upload's target must not be a directory (a rename would fail on it, or replace an empty one). */
async function refuseDirectory(parent: ParentDir, relative: string): Promise<void> {
  const existing = await lstat(parent.entry).catch(() => null);
  if (existing?.isDirectory()) throw new ShipError("validation_error", `path is a directory: ${relative}`, { details: { path: relative } });
}

/**
 * A streamed download response for one workspace file: opened non-blocking without
 * following a last symlink, checked to be a regular file inside the workspace, and
 * streamed from that descriptor (exactly the size fstat reported).
 */
export async function downloadResponse(workspace: string, path: string): Promise<Response> {
  const target = await resolveExisting(workspace, path);
  const handle = await openInside(target, O.O_RDONLY | O.O_NONBLOCK);
  let size: number;
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ShipError("validation_error", `not a file: ${target.relative}`);
    size = info.size;
  } catch (err) {
    await handle.close();
    throw err;
  }
  let sent = 0;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    void handle.close().catch(() => {});
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const want = Math.min(256 * 1024, size - sent);
        if (want <= 0) {
          close();
          controller.close();
          return;
        }
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await handle.read(buf, 0, want, sent);
        if (bytesRead === 0) throw new Error(`file shrank while downloading: ${target.relative}`);
        sent += bytesRead;
        controller.enqueue(buf.subarray(0, bytesRead));
      } catch (err) {
        close();
        controller.error(err);
      }
    },
    cancel: close,
  });
  const name = basename(target.absolute);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return new Response(body, {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Disposition": `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      "Content-Length": String(size),
    },
  });
}
