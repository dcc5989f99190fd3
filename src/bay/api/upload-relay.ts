/**
 * Streams a multipart upload through Bay without holding it in memory: the
 * incoming form is parsed with busboy as it arrives, the `path` is validated
 * before any container starts, and the file bytes are re-emitted into a fresh
 * multipart body for the Ship, chunk by chunk, with backpressure.
 *
 * When `path` arrives before `file` (or as ?path=) the bytes stream straight
 * through. Clients that send `file` first (generated TypeScript clients follow
 * the schema's property order) get the file spooled to a temporary file on
 * Bay's disk until the path is known: still flat in memory, one extra copy.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import Busboy from "busboy";
import { tooLargeError, type StreamingUpload } from "../domain/sandbox-files.ts";
import { BayError } from "../errors.ts";

export interface ParsedUpload extends StreamingUpload {
  path: string;
  filename: string;
  /** Multipart body for the Ship: the `path` field, then the file. */
  body: ReadableStream<Uint8Array>;
  contentType: string;
  /** True when the file exceeded the limit (the stream then errors). */
  tooLarge(): boolean;
  /** Removes a spooled temporary file, if any (also done when `body` ends or is cancelled). */
  release(): Promise<void>;
}

/**
 * @param normalizePath checks and normalises the path (throws invalid_path) before the file is read.
 */
export async function parseUpload(
  req: Request,
  maxBytes: number,
  queryPath: string | undefined,
  normalizePath: (p: string) => string,
): Promise<ParsedUpload> {
  const contentType = req.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data/i.test(contentType) || !req.body) {
    throw new BayError("validation_error", "upload must be multipart/form-data with fields path and file");
  }
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes + 64 * 1024) throw tooLargeError(maxBytes);

  let bb: Busboy.Busboy;
  try {
    bb = Busboy({ headers: { "content-type": contentType }, limits: { fileSize: maxBytes, files: 1, fields: 4 } });
  } catch (e) {
    throw new BayError("validation_error", `malformed multipart body: ${(e as Error).message}`);
  }
  let fieldPath: string | undefined;
  let truncated = false;
  // The first failure of the request body or of the form (e.g. "Unexpected end of
  // form" when the closing boundary never comes). Every stream involved gets an
  // error listener at once: an 'error' emitted with none would end the process.
  let failure: BayError | null = null;
  const fail = (e: unknown) => {
    failure ??= e instanceof BayError ? e : malformed(e);
  };
  const closed = new Promise<void>((resolve) => {
    bb.on("close", () => resolve());
    bb.on("error", () => resolve());
  });
  const source = Readable.fromWeb(req.body as unknown as import("node:stream/web").ReadableStream);
  source.on("error", fail);
  const file = await new Promise<{ stream: Readable; filename: string; pathBefore: string | undefined }>((resolve, reject) => {
    bb.on("field", (name, value) => {
      if (name === "path") fieldPath = value;
    });
    bb.on("file", (name, stream, info) => {
      stream.on("error", fail);
      if (name !== "file") {
        stream.resume();
        return;
      }
      stream.on("limit", () => {
        truncated = true;
      });
      // Snapshot the path now: whether it came before the file decides streaming vs
      // spooling, even when busboy has already parsed a later field (small bodies).
      resolve({ stream, filename: info.filename ?? "upload", pathBefore: fieldPath });
    });
    bb.on("error", (e) => {
      fail(e);
      reject(failure);
    });
    bb.on("close", () => reject(new BayError("validation_error", "multipart body has no file field")));
    source.on("error", (e) => {
      fail(e);
      reject(failure);
    });
    source.pipe(bb);
  });

  let spooledFile: string | undefined;
  let release = async () => {};
  let rawPath = file.pathBefore ?? queryPath;
  if (rawPath === undefined) {
    const spooled = await spool(file.stream).catch((e: unknown) => {
      fail(e);
      throw failure;
    });
    spooledFile = spooled.file;
    release = spooled.release;
    await closed;
    if (failure) {
      await release();
      throw failure;
    }
    rawPath = fieldPath;
    if (truncated) {
      await release();
      throw tooLargeError(maxBytes);
    }
    if (rawPath === undefined) {
      await release();
      throw new BayError("validation_error", "upload needs a path: a `path` form field or ?path=", {
        details: { issues: [{ path: "form.path", message: "required" }] },
      });
    }
  }
  let path: string;
  try {
    path = normalizePath(rawPath);
  } catch (e) {
    file.stream.resume();
    await release();
    throw e;
  }
  // Opened only now that the path is accepted: a refused upload leaves no stream behind.
  const fileBytes: AsyncIterable<unknown> = spooledFile === undefined ? file.stream : createReadStream(spooledFile);
  const boundary = `----bay${crypto.randomUUID().replace(/-/g, "")}`;
  const enc = new TextEncoder();
  const safeName = file.filename.replace(/["\r\n\\]/g, "_");
  const preamble = enc.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n${path}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${safeName}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const epilogue = enc.encode(`\r\n--${boundary}--\r\n`);
  const iterator = fileBytes[Symbol.asyncIterator]();
  let stage: "pre" | "file" | "done" = "pre";
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      if (stage === "pre") {
        stage = "file";
        ctrl.enqueue(preamble);
        return;
      }
      if (stage === "done") return;
      // busboy hands out ~56 KB pieces; forwarding them one by one halves the
      // throughput of the request to the Ship, so they are gathered first.
      const parts: Uint8Array[] = [];
      let length = 0;
      let ended = false;
      while (length < FORWARD_CHUNK_BYTES) {
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (e) {
          fail(e);
          next = { done: true, value: undefined };
        }
        if (failure) {
          stage = "done";
          ctrl.error(failure);
          await release();
          return;
        }
        if (next.done) {
          ended = true;
          break;
        }
        const piece = next.value as Uint8Array;
        parts.push(piece);
        length += piece.byteLength;
      }
      if (truncated) {
        stage = "done";
        ctrl.error(tooLargeError(maxBytes));
        await release();
        return;
      }
      if (length > 0) ctrl.enqueue(parts.length === 1 ? parts[0]! : Buffer.concat(parts, length));
      if (ended) {
        stage = "done";
        // The file part ended; the form must still end properly (closing boundary).
        await closed;
        if (failure) {
          ctrl.error(failure);
          await release();
          return;
        }
        ctrl.enqueue(epilogue);
        ctrl.close();
        await release();
      }
    },
    async cancel() {
      file.stream.destroy();
      await release();
    },
  });
  return {
    path,
    filename: file.filename,
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    tooLarge: () => truncated,
    failure: () => failure,
    release,
  };
}

const malformed = (e: unknown) => new BayError("validation_error", `malformed multipart body: ${(e as Error).message}`);

/** Size of the pieces forwarded to the Ship (see `pull`). */
const FORWARD_CHUNK_BYTES = 256 * 1024;

/** Writes a file part to a private temporary file; `release` removes it (safe twice). */
async function spool(stream: Readable): Promise<{ file: string; release: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "bay-upload-"));
  const release = () => rm(dir, { recursive: true, force: true });
  const file = join(dir, "file");
  try {
    await pipeline(stream, createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    await release();
    throw e;
  }
  return { file, release };
}
