/** Connect's streaming envelope, as raw clients in the tests send and read it. */

/** One Connect message frame: flags, a 4-byte big-endian length, the JSON message. */
export function connectFrame(msg: unknown, flags = 0): Uint8Array<ArrayBuffer> {
  const json = new TextEncoder().encode(JSON.stringify(msg));
  const out = new Uint8Array(5 + json.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, json.length);
  out.set(json, 5);
  return out;
}

/** The JSON messages of a Connect stream's frames as they arrive, with when (ms after the call), until `untilMs` or its end. */
export async function readConnectFrames(body: ReadableStream<Uint8Array>, untilMs: number): Promise<Array<{ atMs: number; msg: any }>> {
  const start = performance.now();
  const reader = body.getReader();
  const out: Array<{ atMs: number; msg: any }> = [];
  let buf = new Uint8Array(0);
  const timer = setTimeout(() => void reader.cancel().catch(() => {}), untilMs);
  try {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done || !value) return out;
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf);
      joined.set(value, buf.length);
      buf = joined;
      while (buf.length >= 5) {
        const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
        if (buf.length < 5 + len) break;
        out.push({ atMs: performance.now() - start, msg: JSON.parse(new TextDecoder().decode(buf.subarray(5, 5 + len))) });
        buf = buf.slice(5 + len);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
