import { randomBytes } from "node:crypto";
import { mkdir, open, realpath, rename, stat, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ShipError } from "../errors.ts";
import { resolveExisting, resolveWorkspacePath } from "../paths.ts";
import { boundaryOf, streamMultipart, type PartSink } from "./multipart.ts";

const FIELD_LIMIT = 64 * 1024;

function tooLarge(limit: number): ShipError {
  return new ShipError("payload_too_large", `upload is larger than ${limit} bytes`, { details: { limit } });
}

/**
 * Receives a multipart upload (`file` and `path` fields, in any order): the file is
 * streamed to a temporary file inside the workspace, then renamed into place.
 */
export async function receiveUpload(
  workspace: string,
  request: Request,
  maxBytes: number,
): Promise<{ status: "ok"; path: string; size: number }> {
  const boundary = boundaryOf(request.headers.get("content-type") ?? undefined);
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes + FIELD_LIMIT) throw tooLarge(maxBytes);
  if (!request.body) throw new ShipError("validation_error", "empty upload body");

  const root = await realpath(workspace);
  const temp = join(root, `.ship-upload-${randomBytes(6).toString("hex")}.tmp`);
  const fields = new Map<string, string>();
  let handle: FileHandle | null = null;
  let size = 0;
  let filename: string | null = null;
  let sawFile = false;
  try {
    await streamMultipart(request.body, boundary, async (part): Promise<PartSink> => {
      if (part.name === "file" && !sawFile) {
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
      }
      const chunks: Buffer[] = [];
      let length = 0;
      return {
        write: (chunk) => {
          length += chunk.byteLength;
          if (length > FIELD_LIMIT) throw new ShipError("validation_error", `field ${part.name} is too large`);
          chunks.push(Buffer.from(chunk));
        },
        end: () => void fields.set(part.name, Buffer.concat(chunks).toString("utf8")),
      };
    });
    if (!sawFile) throw new ShipError("validation_error", "multipart field `file` is required");
    const wanted = fields.get("path") || filename;
    if (!wanted) throw new ShipError("validation_error", "multipart field `path` is required");
    const target = await resolveWorkspacePath(workspace, wanted);
    if (target.relative === ".") throw new ShipError("invalid_path", "cannot write to the workspace root");
    if (target.exists && (await stat(target.absolute)).isDirectory()) {
      throw new ShipError("validation_error", `path is a directory: ${target.relative}`);
    }
    await mkdir(dirname(target.absolute), { recursive: true });
    await rename(temp, target.absolute);
    return { status: "ok", path: target.relative, size };
  } catch (err) {
    await (handle as FileHandle | null)?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  }
}

/** A streamed download response for one workspace file. */
export async function downloadResponse(workspace: string, path: string): Promise<Response> {
  const target = await resolveExisting(workspace, path);
  const info = await stat(target.absolute);
  if (!info.isFile()) throw new ShipError("validation_error", `not a file: ${target.relative}`);
  const name = basename(target.absolute);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return new Response(Bun.file(target.absolute), {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Disposition": `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      "Content-Length": String(info.size),
    },
  });
}
