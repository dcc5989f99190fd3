/**
 * Every `file` part of a multipart body, received into the upload spool: for
 * routes that take several files in one request and write none of them until
 * the whole form is known good (envd's `POST /files`, which the E2B SDKs use
 * for every write). The bytes go to Bay's disk as they arrive, counted against
 * the spool and the owner's share of it, never held in memory: parsed in
 * memory, a 256 MiB upload grew Bay's RSS by 539 MiB (review s42).
 *
 * Parts are kept in the order they came, each with the file name its
 * Content-Disposition gave (whole, directories included, as UTF-8). A part
 * named `file` without a file name (a plain field) fails the form, as does a
 * malformed body; other fields are ignored. Nothing is kept after `release`.
 */
import type { ReadStream } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import type Busboy from "busboy";
import { BayError } from "../errors.ts";
import { busboy, malformed, spoolFile } from "./multipart-upload.ts";
import type { SpoolOpener } from "./upload-spool.ts";

export interface FilePartsOptions {
  /** The largest one file may be (the body as a whole is bounded by its caller). */
  maxFileBytes: number;
  /** The 413 for a file over `maxFileBytes`. */
  tooLarge: () => BayError;
  /** Most `file` parts in one body. */
  maxFiles: number;
  /** The spool, as the uploading owner's share of it. */
  spool: SpoolOpener;
}

/** One `file` part, spooled. */
export interface SpooledPart {
  /** The part's file name as sent (may be empty). */
  filename: string;
  /** Its bytes, as a stream that `release` closes, read or not. */
  read(): ReadStream;
}

export interface SpooledParts {
  parts: SpooledPart[];
  /** Closes every reader and removes the spooled files (safe twice). */
  release(): Promise<void>;
}

/**
 * Receives every `file` part of `body` (a `multipart/form-data` of `contentType`)
 * into one spool slot. Rejects with the body's own failure (400), a file over
 * the limit (413) or a full spool (429), having released everything.
 */
export async function receiveFileParts(
  body: ReadableStream<Uint8Array>,
  contentType: string,
  opts: FilePartsOptions,
): Promise<SpooledParts> {
  const slot = await opts.spool.open();
  let bb: Busboy.Busboy;
  try {
    bb = busboy()({
      headers: { "content-type": contentType },
      // Envd's clients name each file by its whole path, in UTF-8.
      preservePath: true,
      defParamCharset: "utf8",
      limits: { fileSize: opts.maxFileBytes, files: opts.maxFiles, fields: 100, fieldSize: 64 * 1024, parts: opts.maxFiles + 100 },
    });
  } catch (e) {
    await slot.release();
    throw malformed(e);
  }
  const source = Readable.fromWeb(body as unknown as import("node:stream/web").ReadableStream);
  const parts: SpooledPart[] = [];
  const writes: Array<Promise<void>> = [];
  /** Parts still arriving: a failure ends them, or their writers would wait for bytes that never come. */
  const arriving = new Set<Readable>();
  let failure: BayError | null = null;
  let settle!: () => void;
  const done = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const fail = (e: unknown) => {
    if (failure) return;
    failure = malformed(e);
    source.unpipe(bb);
    source.destroy();
    for (const stream of arriving) stream.destroy(failure);
    settle();
  };
  source.on("error", fail);
  bb.on("error", fail);
  bb.on("close", () => settle());
  bb.on("filesLimit", () => fail(new BayError("validation_error", `more than ${opts.maxFiles} file parts`)));
  bb.on("partsLimit", () => fail(new BayError("validation_error", "too many parts")));
  bb.on("field", (name) => {
    if (name === "file") fail(new BayError("validation_error", "a `file` part must be a file"));
  });
  bb.on("file", (name, stream, info) => {
    stream.on("error", fail);
    if (failure || name !== "file") {
      stream.resume();
      return;
    }
    stream.on("limit", () => fail(opts.tooLarge()));
    arriving.add(stream);
    stream.on("end", () => arriving.delete(stream));
    // Each part in its own file of the slot, named by its place in the form.
    const spoolName = String(parts.length);
    parts.push({ filename: info.filename ?? "", read: () => slot.read(join(slot.dir, spoolName)) });
    writes.push(
      spoolFile(stream, slot, spoolName).then(
        () => {},
        (e: unknown) => {
          stream.resume();
          fail(e);
        },
      ),
    );
  });
  source.pipe(bb);
  await done;
  await Promise.allSettled(writes);
  if (failure) {
    await slot.release();
    throw failure;
  }
  return { parts, release: slot.release };
}
