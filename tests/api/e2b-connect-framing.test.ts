/**
 * envd's Connect RPC services and what the fuzzer found in their framing: every
 * answer carries Bay's X-Request-Id (the Connect handler's own Response did not get
 * the one set on the context), and a request Connect cannot read — a binary message
 * that is no protobuf, a compressed envelope with no compression negotiated — is the
 * client's invalid_argument (400, or the stream's end), not internal (500).
 * Memory driver (fake Ship), real app and libSQL.
 */
import { afterEach, expect, test } from "bun:test";
import { createMemoryBay, e2bSandbox, type MemoryBay } from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

function frame(data: Uint8Array, flags = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(5 + data.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.byteLength);
  out.set(data, 5);
  return out;
}

test("every Connect answer carries X-Request-Id: success, error, 415 and a stream; a caller's id is echoed", async () => {
  t = await createMemoryBay();
  const { auth } = await e2bSandbox(t);
  const call = (method: string, type: string, body: BodyInit, extra: Record<string, string> = {}) =>
    t!.bay.app.request(`/e2b/${method}`, { method: "POST", headers: { ...auth, "content-type": type, ...extra }, body });
  const answers = [
    await call("process.Process/List", "application/json", "{}", { "x-request-id": "req-connect-1" }),
    await call("filesystem.Filesystem/Stat", "application/json", JSON.stringify({ path: "/etc/passwd" })),
    await call("process.Process/List", "text/plain", "{}"),
    await call("filesystem.Filesystem/Stat", "application/json", "{}", { "x-access-token": "wrong" }),
    await call("process.Process/Start", "application/connect+json", frame(new TextEncoder().encode("{}"))),
  ];
  expect(answers.map((r) => r.status)).toEqual([200, 400, 415, 401, 200]);
  for (const r of answers) {
    await r.arrayBuffer();
    expect(r.headers.get("x-request-id")).toBeTruthy();
  }
  expect(answers[0]!.headers.get("x-request-id")).toBe("req-connect-1");
});

test("a binary message that is no protobuf, or a compressed envelope without compression, is invalid_argument, not internal", async () => {
  t = await createMemoryBay();
  const { auth } = await e2bSandbox(t);
  const call = (method: string, type: string, body: Uint8Array<ArrayBuffer>) =>
    t!.bay.app.request(`/e2b/${method}`, { method: "POST", headers: { ...auth, "content-type": type }, body });
  // A varint that never ends; a length past the end; field number 0.
  for (const bytes of [
    [0x08, ...Array(11).fill(0xff)],
    [0x0a, 0x40, 0x61, 0x62],
    [0x00, 0x01],
  ]) {
    const res = await call("filesystem.Filesystem/Stat", "application/proto", Uint8Array.from(bytes));
    const body = (await res.json()) as { code: string; message: string };
    expect({ status: res.status, code: body.code }).toEqual({ status: 400, code: "invalid_argument" });
    // Refused by Bay's judge before Connect decodes it (proto-shape.ts), or by Connect's decoder.
    expect(body.message).toMatch(/^(parse binary: |field \d+ |the message )/);
    expect(res.headers.get("content-type")).toBe("application/json");
  }
  const streams: Array<[string, Uint8Array<ArrayBuffer>]> = [
    ["application/connect+proto", frame(Uint8Array.from([0x0a, 0x40, 0x61, 0x62]))],
    ["application/connect+json", frame(new TextEncoder().encode('{"path":"/home/user"}'), 0x01)],
  ];
  for (const [type, body] of streams) {
    const res = await call("filesystem.Filesystem/WatchDir", type, body);
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes[0]).toBe(0x02);
    expect(new DataView(bytes.buffer).getUint32(1)).toBe(bytes.byteLength - 5);
    const end = JSON.parse(new TextDecoder().decode(bytes.subarray(5))) as { error: { code: string } };
    expect(end.error.code).toBe("invalid_argument");
  }
  // A readable message is still served as before.
  const ok = await call("process.Process/List", "application/proto", new Uint8Array());
  expect(ok.status).toBe(200);
  expect(ok.headers.get("content-type")).toBe("application/proto");
});
