/**
 * Docker multiplexes stdout and stderr of a non-TTY container into frames:
 * 1 byte stream id, 3 bytes padding, 4 bytes big-endian length, then the payload.
 * A TTY container's log is raw bytes, recognised by a first byte that is no stream id.
 */
export function demuxLogs(buf: Uint8Array): string {
  const isFramed = (b: Uint8Array, at: number) =>
    at + 8 <= b.length && (b[at] === 0 || b[at] === 1 || b[at] === 2) && b[at + 1] === 0 && b[at + 2] === 0 && b[at + 3] === 0;
  if (buf.length === 0) return "";
  if (!isFramed(buf, 0)) return new TextDecoder().decode(buf);

  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const parts: Uint8Array[] = [];
  let at = 0;
  while (isFramed(buf, at)) {
    const size = view.getUint32(at + 4);
    parts.push(buf.subarray(at + 8, Math.min(at + 8 + size, buf.length)));
    at += 8 + size;
  }
  return new TextDecoder().decode(Buffer.concat(parts));
}
