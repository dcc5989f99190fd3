/**
 * Receives a multipart upload (`file` and `path` fields, in either order, or
 * ?path=) into a temporary file on Bay's disk, streaming with busboy and never
 * holding the file in memory. The workspace data plane needs this because a tar
 * entry must state its size before its bytes.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import Busboy from "busboy";
import { BayError } from "../errors.ts";

export interface UploadedFile {
  path: string;
  filename: string;
  /** Temporary file holding the bytes. */
  file: string;
  size: number;
  /** Removes the temporary file; safe to call twice. */
  cleanup(): Promise<void>;
}

export interface ReceiveOptions {
  maxBytes: number;
  queryPath: string | undefined;
  /** Checks and normalises the path (throws invalid_path). */
  normalizePath: (p: string) => string;
  /** The error for a file over `maxBytes`. */
  tooLarge: () => BayError;
  dir?: string;
}

const malformed = (e: unknown) => new BayError("validation_error", `malformed multipart body: ${(e as Error).message}`);

export async function receiveUploadToFile(req: Request, opts: ReceiveOptions): Promise<UploadedFile> {
  const contentType = req.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data/i.test(contentType) || !req.body) {
    throw new BayError("validation_error", "upload must be multipart/form-data with fields path and file");
  }
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > opts.maxBytes + 64 * 1024) throw opts.tooLarge();
  // A path sent before the file is refused before a byte of the file is stored.
  if (opts.queryPath !== undefined) opts.normalizePath(opts.queryPath);

  let bb: Busboy.Busboy;
  try {
    bb = Busboy({
      headers: { "content-type": contentType },
      limits: { fileSize: opts.maxBytes, files: 1, fields: 4, fieldSize: 64 * 1024 },
    });
  } catch (e) {
    throw malformed(e);
  }
  const tempDir = await mkdtemp(join(opts.dir ?? tmpdir(), "bay-upload-"));
  const file = join(tempDir, "file");
  const cleanup = () => rm(tempDir, { recursive: true, force: true });
  let fieldPath: string | undefined;
  let filename = "upload";
  let size = 0;
  let sawFile = false;
  let truncated = false;
  const writes: Promise<void>[] = [];
  const source = Readable.fromWeb(req.body as unknown as import("node:stream/web").ReadableStream);
  try {
    await new Promise<void>((resolve, reject) => {
      // Stop reading at the first refusal: the rest of the body is not wanted.
      const fail = (e: unknown) => {
        source.unpipe(bb);
        source.destroy();
        reject(e);
      };
      bb.on("field", (name, value) => {
        if (name !== "path") return;
        fieldPath = value;
        try {
          opts.normalizePath(value);
        } catch (e) {
          fail(e);
        }
      });
      bb.on("file", (name, stream, info) => {
        if (name !== "file" || sawFile) {
          stream.resume();
          return;
        }
        sawFile = true;
        filename = info.filename ?? "upload";
        stream.on("data", (chunk: Buffer) => (size += chunk.byteLength));
        stream.on("limit", () => {
          truncated = true;
          stream.destroy();
          fail(opts.tooLarge());
        });
        const written = pipeline(stream, createWriteStream(file) as Writable);
        written.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
        writes.push(written);
      });
      bb.on("error", (e) => fail(malformed(e)));
      bb.on("close", () => resolve());
      source.on("error", (e) => fail(malformed(e)));
      source.pipe(bb);
    });
    await Promise.all(writes);
    if (truncated) throw opts.tooLarge();
    if (!sawFile) throw new BayError("validation_error", "multipart body has no file field");
    const rawPath = fieldPath ?? opts.queryPath;
    if (!rawPath) {
      throw new BayError("validation_error", "upload needs a path: send the path field or ?path=", {
        details: { issues: [{ path: "form.path", message: "required" }] },
      });
    }
    return { path: opts.normalizePath(rawPath), filename, file, size, cleanup };
  } catch (e) {
    await Promise.allSettled(writes);
    await cleanup();
    throw e;
  }
}
