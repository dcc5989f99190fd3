import { ShipError } from "../errors.ts";

/** Headers of one multipart part. */
export interface PartInfo {
  name: string;
  filename: string | null;
  contentType: string | null;
}

/** Where one part's bytes go; awaited writes give back-pressure. */
export interface PartSink {
  write(chunk: Uint8Array): Promise<void> | void;
  end(): Promise<void> | void;
}

const HEADER_LIMIT = 16 * 1024;
const CRLF2 = Buffer.from("\r\n\r\n");

/** Extracts the boundary from a multipart/form-data Content-Type, or throws validation_error. */
export function boundaryOf(contentType: string | undefined): string {
  const match = /^multipart\/form-data\s*;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) throw new ShipError("validation_error", "expected a multipart/form-data body with a boundary");
  return boundary;
}

function parseHeaders(raw: string): PartInfo {
  const headers = new Map<string, string>();
  for (const line of raw.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const disposition = headers.get("content-disposition") ?? "";
  const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? /\bname=([^;\s]+)/i.exec(disposition)?.[1];
  if (name === undefined) throw new ShipError("validation_error", "multipart part without a name");
  const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
  return { name, filename, contentType: headers.get("content-type") ?? null };
}

/** Limits on one multipart body. */
export interface MultipartLimits {
  /** Abort (`timeout`) when no bytes arrive for this long. */
  idleMs?: number;
  /** Most parts accepted (validation_error beyond). */
  maxParts?: number;
  /** Most body bytes accepted (payload_too_large beyond). */
  maxBytes?: number;
}

/** A sink that drops a part's bytes. */
export const DISCARD: PartSink = { write() {}, end() {} };

/** Reads the next chunk, or throws `timeout` (and cancels the stream) after `idleMs` of silence. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number | undefined,
): ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]> {
  if (idleMs === undefined) return reader.read();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new ShipError("timeout", `upload stalled: no data for ${Math.round(idleMs / 1000)}s`, {
          details: { idle_seconds: idleMs / 1000 },
        }),
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
 * Streams a multipart/form-data body part by part, never holding more than one
 * chunk plus a boundary's length in memory. `open` decides where each part goes.
 */
export async function streamMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  open: (part: PartInfo) => Promise<PartSink> | PartSink,
  limits: MultipartLimits = {},
): Promise<void> {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const keep = delimiter.length - 1;
  // A leading CRLF lets the first boundary match the same delimiter as the others.
  let buf: Buffer = Buffer.from("\r\n");
  type State = "preamble" | "after" | "headers" | "body" | "done";
  let state = "preamble" as State;
  let sink: PartSink | null = null;
  let parts = 0;
  let received = 0;

  const step = async (final: boolean): Promise<boolean> => {
    switch (state) {
      case "preamble": {
        const idx = buf.indexOf(delimiter);
        if (idx < 0) {
          buf = buf.subarray(Math.max(0, buf.length - keep));
          return false;
        }
        buf = buf.subarray(idx + delimiter.length);
        state = "after";
        return true;
      }
      case "after": {
        if (buf.length < 2) return false;
        const two = buf.subarray(0, 2).toString("latin1");
        if (two === "--") {
          state = "done";
          return false;
        }
        if (two !== "\r\n") throw new ShipError("validation_error", "malformed multipart body");
        buf = buf.subarray(2);
        state = "headers";
        return true;
      }
      case "headers": {
        const idx = buf.indexOf(CRLF2);
        if (idx < 0) {
          if (buf.length > HEADER_LIMIT) throw new ShipError("validation_error", "multipart headers too large");
          return false;
        }
        const info = parseHeaders(buf.subarray(0, idx).toString("utf8"));
        buf = buf.subarray(idx + CRLF2.length);
        parts += 1;
        if (limits.maxParts !== undefined && parts > limits.maxParts) {
          throw new ShipError("validation_error", `too many multipart parts (max ${limits.maxParts})`, {
            details: { limit: limits.maxParts },
          });
        }
        sink = await open(info);
        state = "body";
        return true;
      }
      case "body": {
        const idx = buf.indexOf(delimiter);
        if (idx >= 0) {
          if (idx > 0) await sink!.write(buf.subarray(0, idx));
          await sink!.end();
          sink = null;
          buf = buf.subarray(idx + delimiter.length);
          state = "after";
          return true;
        }
        const flushable = final ? 0 : buf.length - keep;
        if (flushable > 0) {
          // Copy: the sink may keep the chunk while `buf` is reused.
          await sink!.write(Buffer.from(buf.subarray(0, flushable)));
          buf = buf.subarray(flushable);
        }
        return false;
      }
      case "done":
        return false;
    }
  };

  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value: chunk } = await readWithin(reader, limits.idleMs);
      if (done) break;
      received += chunk.byteLength;
      if (limits.maxBytes !== undefined && received > limits.maxBytes) {
        throw new ShipError("payload_too_large", `multipart body is larger than ${limits.maxBytes} bytes`, {
          details: { limit: limits.maxBytes },
        });
      }
      buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
      while (await step(false));
      if (state === "done") break;
    }
    while (await step(true));
    if (state !== "done") throw new ShipError("validation_error", "truncated multipart body");
  } catch (err) {
    // Stop the sender (a stalled or refused upload is not read any further).
    void reader.cancel().catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
}
