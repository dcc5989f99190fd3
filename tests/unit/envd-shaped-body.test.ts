/**
 * envd's Connect bodies judged before Connect decodes them (src/bay/e2b/envd/shaped-body.ts,
 * proto-shape.ts): a protobuf message of too many fields, its message fields' included,
 * is refused as invalid_argument, unary or in a stream, however its bytes are cut; a real
 * request passes byte for byte; a stream's messages each on their own (review s90 M2).
 */
import { describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";
import { MAX_PROTO_FIELDS } from "../../src/bay/e2b/envd/proto-shape.ts";
import { carriesData } from "../../src/bay/e2b/envd/rpc.ts";
import { shapedBody } from "../../src/bay/e2b/envd/shaped-body.ts";
import { Filesystem, StatRequestSchema } from "../../src/bay/e2b/generated/envd/filesystem/filesystem_pb.ts";
import { Process, StartRequestSchema } from "../../src/bay/e2b/generated/envd/process/process_pb.ts";

const MAX = 2 * 1024 * 1024;

/** `bytes` through shapedBody in pieces of `size`: what came out, or the refusal. */
async function through(type: string, bytes: Uint8Array, input: typeof StatRequestSchema | typeof StartRequestSchema, size: number) {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += size) c.enqueue(bytes.slice(i, i + size));
      c.close();
    },
  });
  try {
    return { out: new Uint8Array(await new Response(shapedBody(type, body, input, MAX)).arrayBuffer()) };
  } catch (e) {
    return { refused: e instanceof ConnectError ? e.code : String(e), message: (e as Error).message };
  }
}

const envelope = (data: Uint8Array, flags = 0) => {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
};

/** `n` unknown varint fields (number 15) after `head`. */
function withUnknown(head: Uint8Array, n: number): Uint8Array {
  const w = new BinaryWriter();
  for (let i = 0; i < n; i++) w.tag(15, WireType.Varint).uint32(0);
  return Buffer.concat([head, w.finish()]);
}

describe("protobuf", () => {
  const stat = toBinary(StatRequestSchema, create(StatRequestSchema, { path: "/home/user" }));
  const start = toBinary(
    StartRequestSchema,
    create(StartRequestSchema, {
      process: { cmd: "/bin/bash", args: ["-l", "-c", "echo hi"], envs: { A: "1", B: "2" }, cwd: "/home/user" },
    }),
  );

  test("a real request passes byte for byte, cut anywhere", async () => {
    for (const size of [1, 3, 7, 1024]) {
      expect((await through("application/proto", stat, StatRequestSchema, size)).out).toEqual(stat);
      const stream = Buffer.concat([envelope(start), envelope(start)]);
      expect((await through("application/connect+proto", stream, StartRequestSchema, size)).out).toEqual(new Uint8Array(stream));
    }
  });

  test("too many fields, at the top or inside a message field or a map entry, is invalid_argument", async () => {
    const top = withUnknown(stat, MAX_PROTO_FIELDS);
    expect(await through("application/proto", top, StatRequestSchema, 4096)).toMatchObject({ refused: 3 });
    expect((await through("application/proto", withUnknown(stat, MAX_PROTO_FIELDS - 10), StatRequestSchema, 4096)).out).toBeDefined();
    // Inside StartRequest.process (field 1, a message): counted there too.
    const inner = withUnknown(new Uint8Array(), MAX_PROTO_FIELDS + 1);
    const nested = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(inner).finish();
    for (const size of [1000, 65536]) {
      expect(await through("application/connect+proto", envelope(nested), StartRequestSchema, size)).toMatchObject({ refused: 3 });
    }
    // Groups nested past any envd message's depth.
    const groups = new BinaryWriter();
    for (let i = 0; i < 40; i++) groups.tag(9, WireType.StartGroup);
    const deep = await through("application/proto", groups.finish(), StatRequestSchema, 4096);
    expect(deep).toMatchObject({ refused: 3 });
    expect(deep.message).toContain("nests deeper");
  });

  test("each message of a stream on its own, however many come in one piece", async () => {
    const many = Buffer.concat(Array.from({ length: 4 }, () => envelope(withUnknown(start, MAX_PROTO_FIELDS / 2))));
    expect((await through("application/connect+proto", many, StartRequestSchema, 999)).out).toEqual(new Uint8Array(many));
    // More than Connect reads in one message's worth of small ones, then one too many fields: still judged.
    const small = Array.from({ length: 3000 }, () => envelope(withUnknown(start, 400)));
    const last = envelope(withUnknown(start, MAX_PROTO_FIELDS + 1));
    const burst = Buffer.concat([...small, last]);
    expect(burst.length).toBeGreaterThan(MAX);
    expect(await through("application/connect+proto", burst, StartRequestSchema, burst.length)).toMatchObject({ refused: 3 });
  });

  test("a known field sent with another wire type than its kind's, or bytes that are no protobuf, are refused (review s91)", async () => {
    const tail = withUnknown(new Uint8Array(), 100);
    // `tag` (field 3, a string) as an end-group; `process` (field 1, a message) as fixed64.
    const cases = [
      Buffer.concat([Uint8Array.from([0x1c, 0x00]), tail]),
      Buffer.concat([Uint8Array.from([0x09, 1, 2, 3, 4, 5, 6, 7, 8]), tail]),
      Uint8Array.from([0x08, ...Array(11).fill(0xff)]),
    ];
    for (const bytes of cases) {
      expect(await through("application/proto", bytes, StartRequestSchema, 4)).toMatchObject({ refused: 3 });
      expect(await through("application/connect+proto", envelope(bytes), StartRequestSchema, 3)).toMatchObject({ refused: 3 });
    }
    // A map entry (envs) whose value is sent as a varint, not a string.
    const entry = new BinaryWriter().tag(1, WireType.LengthDelimited).string("A").tag(2, WireType.Varint).uint32(1).finish();
    const config = new BinaryWriter().tag(3, WireType.LengthDelimited).bytes(entry).finish();
    const badEnv = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(config).finish();
    expect(await through("application/proto", badEnv, StartRequestSchema, 7)).toMatchObject({ refused: 3 });
  });
});

test("JSON must be valid UTF-8, each message of a stream on its own; a character cut between pieces is not a fault (review s92)", async () => {
  const bad = Buffer.concat([new TextEncoder().encode('{"path":"'), new Uint8Array(4096).fill(0xff), new TextEncoder().encode('"}')]);
  for (const size of [1, 100, 8192]) {
    expect(await through("application/json", bad, StatRequestSchema, size)).toMatchObject({
      refused: 3,
      message: "[invalid_argument] the JSON body is not valid UTF-8",
    });
    expect(await through("application/connect+json", envelope(bad), StatRequestSchema, size)).toMatchObject({ refused: 3 });
  }
  // A character whose bytes end the body unfinished.
  const cut = Buffer.concat([new TextEncoder().encode('{"path":"/é'), Uint8Array.from([0xe4, 0xb8])]);
  expect(await through("application/json", cut, StatRequestSchema, 3)).toMatchObject({ refused: 3 });
  const good = new TextEncoder().encode(JSON.stringify({ path: "/home/user/文件/é🙂" }));
  for (const size of [1, 2, 3, 5]) {
    expect((await through("application/json", good, StatRequestSchema, size)).out).toEqual(good);
    const two = Buffer.concat([envelope(good), envelope(good)]);
    expect((await through("application/connect+json", two, StatRequestSchema, size)).out).toEqual(new Uint8Array(two));
  }
});

test("a JSON message holds at most 256 KiB of non-ASCII text; base64 stdin of any size is ASCII (review s93)", async () => {
  const text = (chars: number) => new TextEncoder().encode(JSON.stringify({ process: { cmd: "/bin/echo", args: ["ж".repeat(chars)] } }));
  expect((await through("application/json", text(100_000), StartRequestSchema, 65536)).out).toBeDefined();
  expect(await through("application/json", text(140_000), StartRequestSchema, 65536)).toMatchObject({ refused: 3 });
  const stdin = new TextEncoder().encode(
    JSON.stringify({ process: { pid: 1 }, input: { stdin: Buffer.alloc(1536 * 1024, 0xd0).toString("base64") } }),
  );
  expect((await through("application/connect+json", envelope(stdin), StartRequestSchema, 65536)).out).toBeDefined();
});

test("a call that takes one request message refuses a second envelope before Connect decodes it (review s93)", async () => {
  const start = new TextEncoder().encode(JSON.stringify({ process: { cmd: "/bin/true" } }));
  const body = (bytes: Uint8Array) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    });
  const read = (one: boolean, second = envelope(start)) =>
    new Response(
      shapedBody("application/connect+json", body(Buffer.concat([envelope(start), second])), StartRequestSchema, MAX, undefined, one),
    )
      .arrayBuffer()
      .then(() => "passed")
      .catch((e: ConnectError) => e.rawMessage);
  expect(await read(true)).toBe("this call takes one request message");
  // A second one with the compressed flag counts too (review s96 F3).
  expect(await read(true, envelope(start, 0x01))).toBe("this call takes one request message");
  // A client stream (StreamInput) takes many.
  expect(await read(false)).toBe("passed");
});

test("a call that carries no command or stdin has a small body: past the bound, resource_exhausted", async () => {
  const body = new TextEncoder().encode(JSON.stringify({ path: `/${"x".repeat(64 * 1024)}` }));
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(body);
      c.close();
    },
  });
  const refused = await new Response(shapedBody("application/json", stream, StatRequestSchema, MAX, 64 * 1024))
    .arrayBuffer()
    .then(() => null)
    .catch((e: ConnectError) => e.code);
  expect(refused).toBe(8);
});

test("the calls whose request may carry data (a command, stdin, a terminal's input) are exactly Start, SendInput and StreamInput", () => {
  const large = [Process, Filesystem].flatMap((s) => s.methods.filter((m) => carriesData(m.input)).map((m) => `${s.name}/${m.name}`));
  expect(large.sort()).toEqual(["Process/SendInput", "Process/Start", "Process/StreamInput"]);
});

test("JSON: judged by its shape, unary and in a stream", async () => {
  const deep = new TextEncoder().encode(`{"path":"/","x":${"[".repeat(65)}${"]".repeat(65)}}`);
  expect(await through("application/json", deep, StatRequestSchema, 5)).toMatchObject({ refused: 3 });
  expect(await through("application/connect+json", envelope(deep), StatRequestSchema, 5)).toMatchObject({ refused: 3 });
  const ok = new TextEncoder().encode('{"path":"/home/user"}');
  expect((await through("application/json", ok, StatRequestSchema, 2)).out).toEqual(ok);
});
