/**
 * Reading a background process's output ring: one JSON page from an offset, or
 * a follow that writes events as output arrives. Both decode the same way: bytes
 * of one stream in a row are joined, then turned into UTF-8 text (invalid bytes
 * replaced) or base64; in text, an incomplete character at the very end of what
 * is there waits for its last bytes (unless no more will come).
 */
import type { SseSink } from "../sse.ts";
import type { OutputChunk as RingChunk, OutputRing } from "./output-ring.ts";
import type { ProcessItem, ProcessOutput } from "./process-registry.ts";
import { ShipError } from "../errors.ts";

export type OutputEncoding = "text" | "base64";

/** One chunk as the protocol sends it. */
export interface WireChunk {
  stream: "stdout" | "stderr";
  offset: number;
  next_offset: number;
  data: string;
}

/** Bytes one follow event carries at most. */
const EVENT_BYTES = 64 * 1024;
/** A JSON page carries at most this much (the ring is usually smaller). */
const PAGE_BYTES = 8 * 1024 * 1024;

/** Length of the longest prefix of `bytes` that does not end inside a UTF-8 character. */
export function completeUtf8Length(bytes: Uint8Array): number {
  const n = bytes.byteLength;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/** Joins adjacent chunks of one stream (so a character split between reads decodes whole). */
function joinRuns(chunks: RingChunk[]): RingChunk[] {
  const out: RingChunk[] = [];
  for (const c of chunks) {
    const last = out[out.length - 1];
    if (last && last.stream === c.stream && last.offset + last.bytes.byteLength === c.offset) {
      last.bytes = Buffer.concat([last.bytes, c.bytes]);
    } else {
      out.push({ ...c });
    }
  }
  return out;
}

/**
 * Encodes what a ring read returned. With text, a trailing incomplete character
 * is held back unless `final`; the returned `next` says where reading resumes.
 */
export function encodeChunks(chunks: RingChunk[], encoding: OutputEncoding, final: boolean): { wire: WireChunk[]; next: number | null } {
  const runs = joinRuns(chunks);
  const wire: WireChunk[] = [];
  let next: number | null = null;
  runs.forEach((run, i) => {
    let bytes = run.bytes;
    if (encoding === "text" && !final && i === runs.length - 1) bytes = bytes.subarray(0, completeUtf8Length(bytes));
    if (bytes.byteLength === 0) return;
    const data = encoding === "base64" ? Buffer.from(bytes).toString("base64") : Buffer.from(bytes).toString("utf8");
    wire.push({ stream: run.stream, offset: run.offset, next_offset: run.offset + bytes.byteLength, data });
    next = run.offset + bytes.byteLength;
  });
  return { wire, next };
}

function checkOffset(ring: OutputRing, offset: number, processId: string): void {
  if (offset > ring.length) {
    throw new ShipError("validation_error", `offset ${offset} is past the end of the output (${ring.length} bytes so far)`, {
      details: { issues: [{ path: "query.offset", message: `at most ${ring.length} (process ${processId})` }] },
    });
  }
}

/** The JSON page: everything the ring holds from `offset` on. */
export function readPage(out: ProcessOutput, offset: number, encoding: OutputEncoding) {
  const item = out.item();
  checkOffset(out.ring, offset, item.process_id);
  const closed = out.ring.closed;
  const read = out.ring.read(offset, PAGE_BYTES);
  const final = closed && read.next === out.ring.length;
  const { wire, next } = encodeChunks(read.chunks, encoding, final);
  const nextOffset = next ?? read.from;
  return {
    process_id: item.process_id,
    status: item.status,
    exit_code: item.exit_code,
    signal: item.signal,
    offset: read.from,
    next_offset: nextOffset,
    skipped: read.skipped,
    chunks: wire,
    eof: closed && nextOffset === out.ring.length,
  };
}

/** Checks a follow's offset up front, so a bad one is a 400 rather than an error event. */
export function checkFollow(out: ProcessOutput, offset: number): void {
  checkOffset(out.ring, offset, out.item().process_id);
}

/**
 * Follows the output from `offset` until the process ended and its pipes are
 * drained, writing `output`, `dropped` and last `exit` events. Each `send` waits
 * for the reader, and the ring is read from where this reader is: a slow reader
 * falls behind (and is told what it missed) instead of making Ship buffer.
 */
export async function followOutput(out: ProcessOutput, offset: number, encoding: OutputEncoding, sink: SseSink): Promise<void> {
  let pos = offset;
  for (;;) {
    if (sink.closed) return;
    const closed = out.ring.closed;
    const read = out.ring.read(pos, EVENT_BYTES);
    if (read.skipped > 0 && !(await sink.send("dropped", { offset: pos, next_offset: read.from, bytes: read.skipped }))) return;
    pos = read.from;
    const final = closed && read.next === out.ring.length;
    const { wire, next } = encodeChunks(read.chunks, encoding, final);
    for (const chunk of wire) if (!(await sink.send("output", chunk))) return;
    if (next !== null) pos = next;
    if (closed && pos >= out.ring.length) {
      const item: ProcessItem = out.item();
      await sink.send("exit", { status: item.status, exit_code: item.exit_code, signal: item.signal, next_offset: pos });
      return;
    }
    // Wait for bytes beyond what this read saw (at once when there are; a held-back
    // partial character waits for its last bytes), or for the end.
    await out.ring.waitFor(read.next, sink.signal);
  }
}
