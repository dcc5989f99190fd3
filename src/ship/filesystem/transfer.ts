import { randomBytes } from "node:crypto";
import { lstat, open, realpath, rename, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, join } from "node:path";
import { ShipError } from "../errors.ts";
import { O, openInside, openParentDir, pathError, resolveExisting, resolveWorkspacePath } from "../paths.ts";
import { boundaryOf, DISCARD, streamMultipart, type PartSink } from "./multipart.ts";

/** Cap on the `path` field. */
const PATH_FIELD_LIMIT = 4 * 1024;
/** Cap on the number of parts; parts other than `file` and `path` are discarded unread. */
export const MAX_UPLOAD_PARTS = 10_000;
/** Body bytes allowed on top of the file (headers, boundaries, the path, ignored parts). */
export const UPLOAD_OVERHEAD_BYTES = 4 * 1024 * 1024;
/** Default: abort an upload when no bytes arrive for this long. */
export const UPLOAD_IDLE_MS = 60_000;

function tooLarge(limit: number): ShipError {
  return new ShipError("payload_too_large", `upload is larger than ${limit} bytes`, { details: { limit } });
}

/**
 * Keeps the first `path` field (at most 4 KiB); every other non-file part is
 * discarded as it streams by, so junk fields cost no memory.
 */
export class UploadFields {
  path: string | null = null;
  /** Bytes held for fields; for tests. */
  retainedBytes = 0;

  /** The sink for one non-file part. */
  sinkFor(name: string): PartSink {
    if (name !== "path" || this.path !== null) return DISCARD;
    const chunks: Buffer[] = [];
    let length = 0;
    return {
      write: (chunk) => {
        length += chunk.byteLength;
        if (length > PATH_FIELD_LIMIT) {
          throw new ShipError("validation_error", `field path is longer than ${PATH_FIELD_LIMIT} bytes`);
        }
        chunks.push(Buffer.from(chunk));
        this.retainedBytes += chunk.byteLength;
      },
      end: () => {
        this.path = Buffer.concat(chunks).toString("utf8");
      },
    };
  }
}

/**
 * Receives a multipart upload (`file` and `path` fields, in any order): the file is
 * streamed to a temporary file inside the workspace, then renamed into place inside
 * its checked parent directory. A body that stalls for `idleMs` is aborted (`timeout`)
 * and the temporary file removed.
 */
export async function receiveUpload(
  workspace: string,
  request: Request,
  maxBytes: number,
  options: { idleMs?: number } = {},
): Promise<{ status: "ok"; path: string; size: number }> {
  const boundary = boundaryOf(request.headers.get("content-type") ?? undefined);
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes + UPLOAD_OVERHEAD_BYTES) throw tooLarge(maxBytes);
  if (!request.body) throw new ShipError("validation_error", "empty upload body");

  const root = await realpath(workspace);
  const temp = join(root, `.ship-upload-${randomBytes(6).toString("hex")}.tmp`);
  const fields = new UploadFields();
  let handle: FileHandle | null = null;
  let size = 0;
  let filename: string | null = null;
  let sawFile = false;
  try {
    const limits = { idleMs: options.idleMs ?? UPLOAD_IDLE_MS, maxParts: MAX_UPLOAD_PARTS, maxBytes: maxBytes + UPLOAD_OVERHEAD_BYTES };
    await streamMultipart(
      request.body,
      boundary,
      async (part): Promise<PartSink> => {
        if (part.name !== "file") return fields.sinkFor(part.name);
        if (sawFile) return DISCARD;
        sawFile = true;
        filename = part.filename;
        const fh = await open(temp, "wx", 0o644);
        handle = fh;
        return {
          write: async (chunk) => {
            size += chunk.byteLength;
            if (size > maxBytes) throw tooLarge(maxBytes);
            await fh.write(chunk);
          },
          end: () => fh.close().then(() => void (handle = null)),
        };
      },
      limits,
    );
    if (!sawFile) throw new ShipError("validation_error", "multipart field `file` is required");
    const wanted = fields.path || filename;
    if (!wanted) throw new ShipError("validation_error", "multipart field `path` is required");
    const target = await resolveWorkspacePath(workspace, wanted);
    if (target.relative === ".") throw new ShipError("invalid_path", "cannot write to the workspace root");
    const parent = await openParentDir(target, { create: true });
    try {
      const existing = await lstat(parent.entry).catch(() => null);
      if (existing?.isDirectory()) {
        throw new ShipError("validation_error", `path is a directory: ${target.relative}`, {
          details: { path: target.relative },
        });
      }
      await rename(temp, parent.entry).catch((err) => {
        throw pathError(err, target.relative);
      });
    } finally {
      await parent.handle.close();
    }
    return { status: "ok", path: target.relative, size };
  } catch (err) {
    await (handle as FileHandle | null)?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  }
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
