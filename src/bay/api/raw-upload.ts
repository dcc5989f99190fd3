/**
 * Raw uploads: the request's body is the file itself (`Content-Type:
 * application/octet-stream`) and `?path=` names it. The path is checked and the
 * size limit applied before a byte is read, as for a multipart upload.
 *
 * * With a Content-Length (what a client sends for a file or a buffer), a sandbox
 *   upload's body goes to the Ship's request as it is, with the same length: Bun
 *   moves the bytes natively and none passes through JavaScript (about a third of
 *   the multipart path's CPU per byte here). HTTP's framing ends the body: one that
 *   breaks off short closes the connection before its declared end on both legs, so
 *   Ship never keeps it.
 * * Without one (chunked), the bytes are counted on the way against the same limit.
 * * A workspace upload spools the body (its tar entry must state its size).
 */
import { basename } from "node:path";
import { Readable } from "node:stream";
import { BayError } from "../errors.ts";
import { relayed } from "../relayed-bytes.ts";
import { type ReceiveOptions, type SpooledUpload, spooledUpload, spoolFile, type StreamedUpload } from "./multipart-upload.ts";

const RAW_TYPE = /^application\/octet-stream\s*(;|$)/i;

/** Whether the request's body is the file itself (Content-Type application/octet-stream). */
export const isRawUpload = (req: Request): boolean => RAW_TYPE.test(req.headers.get("content-type") ?? "");

/** The path (checked) and the declared length (checked against the limit) of a raw upload. */
function rawTarget(req: Request, opts: ReceiveOptions): { path: string; sentPath: string; declared: number | null } {
  const sentPath = opts.queryPath;
  if (sentPath === undefined) {
    throw new BayError("validation_error", "a raw upload (application/octet-stream) names its file with ?path=", {
      details: { issues: [{ path: "query.path", message: "required" }] },
    });
  }
  const path = opts.normalizePath(sentPath);
  const header = req.headers.get("content-length");
  // Digits only (HTTP's own form): `1e3` or `0x10` are not lengths, whatever Number() makes of them;
  // one too long to be exact is over any limit (413, as for a form).
  if (header !== null && /^\d{16,}$/.test(header)) throw opts.tooLarge();
  const declared = header !== null && /^\d{1,15}$/.test(header) ? Number(header) : null;
  if (header !== null && declared === null) {
    throw new BayError("validation_error", "invalid Content-Length", {
      details: { issues: [{ path: "header.content-length", message: "invalid" }] },
    });
  }
  if (declared !== null && declared > opts.maxBytes) throw opts.tooLarge(declared);
  return { path, sentPath, declared };
}

const emptyBody = (): ReadableStream<Uint8Array> => new Blob([]).stream();

/** `source`, counted as it is read: errors with a 413 past `maxBytes`, or a 400 when the client's body breaks off. */
function counted(
  source: ReadableStream<Uint8Array>,
  opts: ReceiveOptions,
): { body: ReadableStream<Uint8Array>; failure(): BayError | null } {
  const reader = source.getReader();
  let size = 0;
  let failure: BayError | null = null;
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (e) {
        failure = new BayError("validation_error", `the upload's body broke off: ${(e as Error)?.message ?? String(e)}`);
        ctrl.error(failure);
        return;
      }
      if (r.done) {
        ctrl.close();
        return;
      }
      size += r.value.byteLength;
      if (size > opts.maxBytes) {
        failure = opts.tooLarge();
        void reader.cancel(failure).catch(() => {});
        ctrl.error(failure);
        return;
      }
      ctrl.enqueue(r.value);
      relayed(r.value.byteLength);
    },
    cancel(reason) {
      return reader.cancel(reason).catch(() => {});
    },
  });
  return { body, failure: () => failure };
}

/** A raw sandbox upload, streamed on (see the module's comment). */
export function receiveRaw(req: Request, opts: ReceiveOptions): StreamedUpload & { length?: number } {
  const { path, sentPath, declared } = rawTarget(req, opts);
  const source = req.body ?? emptyBody();
  const base = { path, sentPath, filename: basename(path), release: async () => {} };
  if (declared !== null) return { ...base, body: source, length: declared, failure: () => null };
  return { ...base, ...counted(source, opts) };
}

/** A raw workspace upload, received whole into the spool. */
export async function receiveRawToSpool(req: Request, opts: ReceiveOptions): Promise<SpooledUpload> {
  const { path, sentPath } = rawTarget(req, opts);
  const slot = await opts.spool.open();
  const { body, failure } = counted(req.body ?? emptyBody(), opts);
  try {
    const spooled = await spoolFile(Readable.fromWeb(body as unknown as import("node:stream/web").ReadableStream), slot);
    return spooledUpload(slot, spooled, { path, sentPath, filename: basename(path) });
  } catch (e) {
    await slot.release();
    throw failure() ?? e;
  }
}
