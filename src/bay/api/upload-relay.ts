/**
 * Streams a multipart upload through Bay without holding it in memory: the
 * incoming form is parsed with busboy as it arrives, the `path` field (which
 * must come before `file`, or be given as ?path=) is validated before any
 * container starts, and the file bytes are re-emitted into a fresh multipart
 * body for the Ship, chunk by chunk, with backpressure.
 */
import { Readable } from "node:stream";
import Busboy from "busboy";
import { BayError } from "../errors.ts";

export interface ParsedUpload {
  path: string;
  filename: string;
  /** Multipart body for the Ship: the `path` field, then the file. */
  body: ReadableStream<Uint8Array>;
  contentType: string;
  /** True when the file exceeded the limit (the stream then errors). */
  tooLarge(): boolean;
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
  const file = await new Promise<{ stream: Readable; filename: string; pathBefore: string | undefined }>((resolve, reject) => {
    bb.on("field", (name, value) => {
      if (name === "path") fieldPath = value;
    });
    bb.on("file", (name, stream, info) => {
      if (name !== "file") {
        stream.resume();
        return;
      }
      stream.on("limit", () => {
        truncated = true;
      });
      // Snapshot the path now: a `path` field after the file must not count, even when
      // busboy has already parsed it (small bodies arrive in one chunk).
      resolve({ stream, filename: info.filename ?? "upload", pathBefore: fieldPath });
    });
    bb.on("error", (e) => reject(new BayError("validation_error", `malformed multipart body: ${(e as Error).message}`)));
    bb.on("close", () => reject(new BayError("validation_error", "multipart body has no file field")));
    Readable.fromWeb(req.body as unknown as import("node:stream/web").ReadableStream).pipe(bb);
  });
  const rawPath = file.pathBefore ?? queryPath;
  if (!rawPath) {
    file.stream.resume();
    throw new BayError("validation_error", "upload needs a path: send the path field before the file field, or ?path=", {
      details: { issues: [{ path: "form.path", message: "required before file" }] },
    });
  }
  let path: string;
  try {
    path = normalizePath(rawPath);
  } catch (e) {
    file.stream.resume();
    throw e;
  }
  const boundary = `----bay${crypto.randomUUID().replace(/-/g, "")}`;
  const enc = new TextEncoder();
  const safeName = file.filename.replace(/["\r\n\\]/g, "_");
  const preamble = enc.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n${path}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${safeName}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const epilogue = enc.encode(`\r\n--${boundary}--\r\n`);
  const iterator = file.stream[Symbol.asyncIterator]();
  let stage: "pre" | "file" | "done" = "pre";
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      if (stage === "pre") {
        stage = "file";
        ctrl.enqueue(preamble);
        return;
      }
      if (stage === "done") return;
      const next = await iterator.next();
      if (truncated) {
        stage = "done";
        ctrl.error(tooLargeError(maxBytes));
        return;
      }
      if (next.done) {
        stage = "done";
        ctrl.enqueue(epilogue);
        ctrl.close();
        return;
      }
      ctrl.enqueue(next.value as Uint8Array);
    },
    cancel() {
      file.stream.destroy();
    },
  });
  return { path, filename: file.filename, body, contentType: `multipart/form-data; boundary=${boundary}`, tooLarge: () => truncated };
}

export const tooLargeError = (maxBytes: number) =>
  new BayError("payload_too_large", `upload exceeds the limit of ${maxBytes} bytes`, { details: { limit_bytes: maxBytes } });
