/**
 * The one multipart receiver of Bay: parses an upload (`file` and `path` form
 * fields in either order, or `?path=`) with busboy as it arrives, never holding
 * the file in memory, and checks the path before a byte of the file is kept.
 *
 * * `stream` mode (sandbox uploads): when the path is known before the file, the
 *   file's bytes stream straight on; a file that comes first is spooled until
 *   the path arrives, then streamed from the spool.
 * * `spool` mode (workspace uploads, whose tar entry must state its size): the
 *   file always goes to the spool and its size is known.
 *
 * Every stream involved has an error listener from the moment it exists: an
 * 'error' with none ends the process. A body that ends early or malformed is a
 * 400 `validation_error`, whichever part it cuts.
 */
import { createWriteStream, type ReadStream } from "node:fs";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type Busboy from "busboy";
import { BayError } from "../errors.ts";
import { relayed } from "../relayed-bytes.ts";
import type { SpoolOpener, SpoolSlot } from "./upload-spool.ts";

/** busboy, loaded with the first multipart body: a Bay that receives none never loads it. */
export function busboy(): typeof Busboy {
  return require("busboy") as typeof Busboy;
}

export interface ReceiveOptions {
  /** Largest file accepted. */
  maxBytes: number;
  /** The 413 for a file over `maxBytes`; `size` when it is known before the body (a raw upload's Content-Length). */
  tooLarge: (size?: number) => BayError;
  queryPath: string | undefined;
  /** Checks and normalises the path (throws invalid_path). */
  normalizePath: (p: string) => string;
  /** The spool, as the uploading owner's share of it. */
  spool: SpoolOpener;
}

/** An upload whose file bytes are still arriving. */
export interface StreamedUpload {
  path: string;
  /** The path as the client sent it (before normalizePath). */
  sentPath: string;
  filename: string;
  /** The file's bytes; errors with the client's failure (400) or a 413. */
  body: ReadableStream<Uint8Array>;
  /** The client's own failure (malformed, cut, too large) once the body broke on it. */
  failure(): BayError | null;
  /** Frees anything spooled (also done when `body` ends or is cancelled). */
  release(): Promise<void>;
}

/** An upload received whole into the spool. */
export interface SpooledUpload {
  path: string;
  /** The path as the client sent it (before normalizePath). */
  sentPath: string;
  filename: string;
  size: number;
  /** The file's bytes, as a stream that `release` closes, read or not. */
  read(): ReadStream;
  release(): Promise<void>;
}

export const malformed = (e: unknown) =>
  e instanceof BayError ? e : new BayError("validation_error", `malformed multipart body: ${(e as Error)?.message ?? String(e)}`);

/** What a multipart body may carry beyond its files' bytes (boundaries, part headers) when its declared length is checked. */
const FORM_OVERHEAD_BYTES = 64 * 1024;

/** A multipart body whose declared length is past `maxBytes` of files and a form's overhead: refused before a byte is read. */
export function refuseDeclaredOver(req: Request, maxBytes: number, tooLarge: () => BayError): void {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes + FORM_OVERHEAD_BYTES) throw tooLarge();
}

/** One parse of a multipart request; shared by both modes. */
class FormReader {
  failure: BayError | null = null;
  fieldPath: string | undefined;
  tooLarge = false;
  /** Resolves when busboy finished (close), or the form failed (busboy's error, or a refusal of ours). */
  readonly done: Promise<void>;
  private settle!: () => void;
  private readonly bb: Busboy.Busboy;
  private readonly source: Readable;
  /** The file part being read, ended with the form's failure if one comes. */
  private file: Readable | null = null;

  constructor(
    req: Request,
    private readonly opts: ReceiveOptions,
  ) {
    const contentType = req.headers.get("content-type") ?? "";
    if (!/^multipart\/form-data/i.test(contentType) || !req.body) {
      throw new BayError(
        "validation_error",
        "upload must be multipart/form-data with fields path and file, or the file itself as application/octet-stream with ?path=",
      );
    }
    refuseDeclaredOver(req, opts.maxBytes, opts.tooLarge);
    // A path sent in the query is refused before a byte is read.
    if (opts.queryPath !== undefined) opts.normalizePath(opts.queryPath);
    try {
      this.bb = busboy()({
        headers: { "content-type": contentType },
        limits: { fileSize: opts.maxBytes, files: 1, fields: 4, fieldSize: 64 * 1024 },
      });
    } catch (e) {
      throw malformed(e);
    }
    this.source = Readable.fromWeb(req.body as unknown as import("node:stream/web").ReadableStream);
    this.source.on("error", (e) => this.fail(e));
    this.done = new Promise<void>((resolve) => {
      this.settle = resolve;
    });
    this.bb.on("close", () => this.settle());
    this.bb.on("error", (e) => this.fail(e));
    this.bb.on("field", (name, value) => {
      if (name !== "path" || this.fieldPath !== undefined) return;
      this.fieldPath = value;
      try {
        opts.normalizePath(value);
      } catch (e) {
        this.fail(e);
      }
    });
  }

  /** Records the first failure and stops reading the rest of the body. */
  fail(e: unknown): void {
    if (this.failure) return;
    this.failure = malformed(e);
    this.source.unpipe(this.bb);
    this.source.destroy();
    // Whoever reads the file part sees the failure (otherwise it would wait for bytes that never come).
    if (this.file && !this.file.destroyed) this.file.destroy(this.failure);
    this.settle();
  }

  /**
   * Starts parsing; resolves with the first `file` part (its stream already
   * owned: errors recorded, limit watched) or rejects when the form has none.
   */
  firstFile(): Promise<{ stream: Readable; filename: string; pathBefore: string | undefined }> {
    return new Promise((resolve, reject) => {
      let seen = false;
      this.bb.on("file", (name, stream, info) => {
        stream.on("error", (e) => this.fail(e));
        // The form already failed (a bad path field earlier in the same chunk: busboy
        // parses the rest of a chunk after we stop feeding it). Its data will never
        // all come, so nobody may wait for it; `done` has settled and rejects below.
        if (this.failure || name !== "file" || seen) {
          stream.resume();
          return;
        }
        seen = true;
        this.file = stream;
        stream.on("limit", () => {
          this.tooLarge = true;
          this.fail(this.opts.tooLarge());
        });
        // Whether the path came before the file decides streaming vs spooling.
        resolve({ stream, filename: info.filename ?? "upload", pathBefore: this.fieldPath });
      });
      void this.done.then(() => {
        if (!seen) reject(this.failure ?? new BayError("validation_error", "multipart body has no file field"));
      });
      this.source.pipe(this.bb);
    });
  }

  /** The path once the form is complete, as sent: the field, else the query. */
  finalPath(): string {
    const raw = this.fieldPath ?? this.opts.queryPath;
    if (raw === undefined) {
      throw new BayError("validation_error", "upload needs a path: a `path` form field or ?path=", {
        details: { issues: [{ path: "form.path", message: "required" }] },
      });
    }
    return raw;
  }
}

/** Writes `stream` into the slot's directory (as `name`), counting its bytes against the spool cap. */
export async function spoolFile(stream: Readable, slot: SpoolSlot, name = "file"): Promise<{ file: string; size: number }> {
  const file = join(slot.dir, name);
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        slot.take(chunk.byteLength);
        size += chunk.byteLength;
        relayed(chunk.byteLength);
        done(null, chunk);
      } catch (e) {
        done(e as Error);
      }
    },
  });
  await pipeline(stream, counter, createWriteStream(file, { mode: 0o600 }));
  return { file, size };
}

/** A file received whole into `slot`, as the upload it is (both receivers' answer). */
export function spooledUpload(
  slot: SpoolSlot,
  spooled: { file: string; size: number },
  names: { path: string; sentPath: string; filename: string },
): SpooledUpload {
  return { ...names, size: spooled.size, read: () => slot.read(spooled.file), release: slot.release };
}

/** Receives the whole file into the spool (workspace uploads). */
export async function receiveToSpool(req: Request, opts: ReceiveOptions): Promise<SpooledUpload> {
  const form = new FormReader(req, opts);
  const slot = await opts.spool.open();
  try {
    const part = await form.firstFile();
    const spooled = await spoolFile(part.stream, slot).catch((e: unknown) => {
      form.fail(e); // a full spool (429) or the body breaking (400)
      throw form.failure;
    });
    await form.done;
    if (form.failure) throw form.failure;
    const sentPath = form.finalPath();
    const path = opts.normalizePath(sentPath);
    return spooledUpload(slot, spooled, { path, sentPath, filename: part.filename });
  } catch (e) {
    await slot.release();
    throw form.tooLarge ? opts.tooLarge() : e;
  }
}

/** Receives an upload whose bytes stream on as they arrive (sandbox uploads). */
export async function receiveStreaming(req: Request, opts: ReceiveOptions): Promise<StreamedUpload> {
  const form = new FormReader(req, opts);
  const part = await form.firstFile().catch((e: unknown) => {
    throw form.tooLarge ? opts.tooLarge() : e;
  });
  let release = async () => {};
  let bytes: AsyncIterable<unknown> = part.stream;
  let sentPath: string;
  let path: string;
  if (part.pathBefore !== undefined || opts.queryPath !== undefined) {
    sentPath = (part.pathBefore ?? opts.queryPath)!;
    path = opts.normalizePath(sentPath);
  } else {
    // The file came first: keep it until the path arrives.
    const slot = await opts.spool.open();
    release = slot.release;
    try {
      const spooled = await spoolFile(part.stream, slot).catch((e: unknown) => {
        form.fail(e);
        throw form.failure;
      });
      await form.done;
      if (form.failure) throw form.failure;
      sentPath = form.finalPath();
      path = opts.normalizePath(sentPath);
      // Closed by the slot's release, read or not (an upload refused before its body was read).
      bytes = slot.read(spooled.file);
    } catch (e) {
      part.stream.resume();
      await release();
      throw form.tooLarge ? opts.tooLarge() : e;
    }
  }
  const iterator = bytes[Symbol.asyncIterator]();
  let finished = false;
  const finish = async () => {
    finished = true;
    await release();
  };
  const body = new ReadableStream<Uint8Array>({
    // Each piece busboy cuts goes on as it is: gathering them into larger buffers
    // (a copy per 256 KiB) added ~15 MiB of peak RSS to a 256 MiB upload and no
    // measurable throughput (bench: `BENCH_ONLY=transfer`, `BENCH_ONLY=memory`).
    async pull(ctrl) {
      if (finished) return;
      let piece: Uint8Array | null = null;
      let ended = false;
      // A pull must enqueue, close or fail: one that does none is not called again.
      while (!piece && !ended && !form.failure) {
        try {
          const next = await iterator.next();
          if (next.done) ended = true;
          else if ((next.value as Uint8Array).byteLength > 0) piece = next.value as Uint8Array;
        } catch (e) {
          form.fail(e);
        }
      }
      // The file part ended; the form must still end properly (closing boundary).
      if (ended) await form.done;
      if (form.failure) {
        ctrl.error(form.failure);
        await finish();
        return;
      }
      if (piece) {
        ctrl.enqueue(piece);
        relayed(piece.byteLength);
      }
      if (ended) {
        ctrl.close();
        await finish();
      }
    },
    async cancel() {
      part.stream.destroy();
      form.fail(cancelled);
      await finish();
    },
  });
  // The consumer (the Ship's fetch) giving up on the body, say because the Ship
  // already answered an error, is not the client's failure: the Ship's answer is.
  const cancelled = new BayError("validation_error", "upload cancelled");
  return {
    path,
    sentPath,
    filename: part.filename,
    body,
    failure: () => (form.failure === cancelled ? null : form.failure),
    release: finish,
  };
}
