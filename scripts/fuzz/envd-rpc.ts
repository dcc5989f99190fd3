/**
 * envd's Connect RPC services (process.Process, filesystem.Filesystem, under
 * E2B_BASE) in the fuzz sequence. They are in no OpenAPI spec: their methods come
 * from the generated descriptors Bay serves them with, their requests from
 * envd-rpc-messages.ts, framed by the Connect protocol (JSON or binary protobuf;
 * one envelope for a streaming method) and then, by one strategy, made hostile:
 * a field's value, the framing (Content-Type, envelopes, lengths, compression,
 * Connect headers, HTTP method, an unknown method), the credentials, the deadline,
 * or a client that hangs up after a stream's first message. envd-rpc-check.ts judges
 * the answers.
 */
import { type DescMethod, fromJson, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { Filesystem } from "../../src/bay/e2b/generated/envd/filesystem/filesystem_pb.ts";
import { Process } from "../../src/bay/e2b/generated/envd/process/process_pb.ts";
import type { Rng } from "../lib/rng.ts";
import { COMPRESSED_FLAG, END_STREAM_FLAG, envelope } from "./connect-wire.ts";
import { isSharedAccess, setHeader, sharedAccess } from "./credentials.ts";
import { E2B_BASE } from "./e2b.ts";
import { BAD_PROTO, type RpcMessage, rpcMessage, wrongTypeJson } from "./envd-rpc-messages.ts";
import type { ConnectCall, FuzzRequest } from "./request.ts";

/** The API name of these requests in the report's counts. */
export const ENVD_API = "envd";
/** Share of the fuzz sequence sent to envd's Connect services. */
export const ENVD_SHARE = 0.12;
/** Largest message Bay reads (rpc.ts's readMaxBytes). */
const READ_MAX_BYTES = 4 * 1024 * 1024;

export const ENVD_METHODS: readonly DescMethod[] = [...Process.methods, ...Filesystem.methods];
export const rpcPath = (m: DescMethod): string => `${m.parent.typeName}/${m.name}`;
export const methodOf = (path: string): DescMethod | undefined => ENVD_METHODS.find((m) => rpcPath(m) === path);

type Kind = ConnectCall["kind"];
const streams = (kind: Kind) => kind === "server_streaming" || kind === "client_streaming";

interface RpcDraft {
  method: DescMethod;
  msg: RpcMessage;
  codec: "json" | "proto";
  httpMethod: string;
  path: string;
  headers: Array<[string, string]>;
  /** JSON text (placeholders filled at send time) or binary bytes. */
  payload: string | Uint8Array;
  /** Set when the strategy wrote the body itself (already framed). */
  body?: string | Uint8Array;
  envelope?: { flags: number; claimedExtra?: number };
  firstOnly?: boolean;
  unread?: boolean;
  cardinality?: boolean;
  mutation: string;
  reject: string[];
}

/** The message's binary form, when it has one (no placeholders, every value valid for its field). */
function binaryOf(method: DescMethod, msg: RpcMessage): Uint8Array | undefined {
  const text = JSON.stringify(msg.json);
  if (text.includes("{{")) return undefined;
  try {
    return toBinary(method.input, fromJson(method.input, msg.json as JsonValue, { ignoreUnknownFields: true }));
  } catch {
    return undefined;
  }
}

function baseDraft(rng: Rng, method: DescMethod, hostileField: boolean): RpcDraft {
  const msg = rpcMessage(rng, rpcPath(method), hostileField);
  const binary = rng.chance(0.4) ? binaryOf(method, msg) : undefined;
  const codec = binary ? "proto" : "json";
  const kind = method.methodKind;
  const type = streams(kind) ? `application/connect+${codec}` : `application/${codec}`;
  const headers: Array<[string, string]> = [
    ["Content-Type", type],
    ["E2b-Sandbox-Id", "{{esb.own}}"],
    ["X-Access-Token", "{{etok.own}}"],
  ];
  if (rng.chance(0.7)) headers.push(["Connect-Protocol-Version", "1"]);
  // A Start that may wait (a terminal, an odd command) runs under a deadline, as the SDKs' timeoutMs: it cannot pile up.
  if (msg.needsDeadline || (rng.chance(0.3) && kind !== "unary")) headers.push(["Connect-Timeout-Ms", String(rng.int(2000, 10_000))]);
  const d: RpcDraft = {
    method,
    msg,
    codec,
    httpMethod: "POST",
    path: `${E2B_BASE}/${rpcPath(method)}`,
    headers,
    payload: binary ?? JSON.stringify(msg.json),
    mutation: msg.tag,
    reject: msg.reject ? [msg.reject] : [],
  };
  if (streams(kind)) {
    if (binary) d.body = envelope(binary);
    else d.envelope = { flags: 0 };
  }
  return d;
}

/** The framing made hostile: types, envelopes, lengths, compression, Connect's headers, HTTP method, unknown methods. */
function framing(rng: Rng, d: RpcDraft): void {
  const kind = d.method.methodKind;
  const stream = streams(kind);
  const what = rng.weighted({
    contentType: 4,
    otherShape: 3,
    truncated: stream ? 3 : 0,
    hugePrefix: stream ? 2 : 0,
    oversize: 1,
    compressed: stream ? 2 : 0,
    encoding: 2,
    badProto: 2,
    badJson: 3,
    empty: 2,
    protocolVersion: 2,
    endFlag: stream ? 1 : 0,
    twoMessages: stream ? 1 : 0,
    httpMethod: 2,
    unknownMethod: 2,
  });
  const json = typeof d.payload === "string" ? d.payload : JSON.stringify(d.msg.json);
  const frameJson = (text: string) => {
    d.body = text;
    d.envelope = stream ? { flags: 0 } : undefined;
  };
  switch (what) {
    case "contentType": {
      const type = rng.pick([
        undefined,
        "text/plain",
        "application/grpc",
        "application/x-protobuf",
        "application/grpc-web+proto",
        "multipart/form-data",
      ]);
      setHeader(d, "Content-Type", type);
      d.mutation = `Content-Type ${type ?? "missing"}`;
      d.reject.push("a Content-Type that is not Connect's");
      return;
    }
    case "otherShape": {
      // A unary body to a streaming method, an enveloped one to a unary method.
      if (stream) {
        setHeader(d, "Content-Type", rng.pick(["application/json", "application/proto"]));
        d.body = json;
        d.envelope = undefined;
        d.mutation = "unary body to a streaming method";
      } else {
        setHeader(d, "Content-Type", "application/connect+json");
        d.body = json;
        d.envelope = { flags: 0 };
        d.mutation = "streaming envelope to a unary method";
      }
      d.reject.push("a Content-Type for the other kind of method");
      return;
    }
    case "truncated": {
      const extra = rng.pick([1, 100, 65_536]);
      d.envelope = { flags: 0, claimedExtra: extra };
      if (d.body instanceof Uint8Array) d.body = undefined;
      setHeader(d, "Content-Type", "application/connect+json");
      d.payload = json;
      d.mutation = `envelope claiming ${extra} bytes more than sent`;
      d.reject.push("an envelope cut short");
      return;
    }
    case "hugePrefix": {
      const claimed = rng.pick([READ_MAX_BYTES + 1, 0xffffffff]);
      setHeader(d, "Content-Type", "application/connect+json");
      d.body = envelope(new TextEncoder().encode('{"path":"x"}'), 0, claimed);
      d.envelope = undefined;
      d.mutation = `envelope length prefix ${claimed}`;
      d.reject.push("a message over readMaxBytes");
      return;
    }
    case "oversize": {
      // A real body past readMaxBytes: a path (or the first string field) of 4 MiB.
      const big = JSON.stringify({ path: "p".repeat(READ_MAX_BYTES + 16) });
      setHeader(d, "Content-Type", stream ? "application/connect+json" : "application/json");
      frameJson(big);
      d.unread = true;
      d.mutation = "message over 4 MiB";
      d.reject.push("a message over readMaxBytes");
      return;
    }
    case "compressed": {
      setHeader(d, "Content-Type", "application/connect+json");
      d.body = json;
      d.envelope = { flags: COMPRESSED_FLAG };
      const enc = rng.pick([undefined, "identity"]);
      setHeader(d, "Connect-Content-Encoding", enc);
      d.mutation = `compressed flag with Connect-Content-Encoding ${enc ?? "missing"}`;
      d.reject.push("a compressed envelope without a compression");
      return;
    }
    case "encoding": {
      const enc = rng.pick(["x-fuzz", "gzip", "br", ""]);
      setHeader(d, stream ? "Connect-Content-Encoding" : "Content-Encoding", enc);
      d.mutation = `${stream ? "Connect-Content-Encoding" : "Content-Encoding"} ${enc || "empty"}`;
      // gzip claimed over plain bytes cannot be inflated; an encoding nobody knows is unimplemented.
      if (enc !== "") d.reject.push("a body in an encoding it is not in, or one Bay does not offer");
      return;
    }
    case "badProto": {
      const [tag, bytes] = rng.pick(BAD_PROTO);
      setHeader(d, "Content-Type", stream ? "application/connect+proto" : "application/proto");
      d.body = stream ? envelope(Uint8Array.from(bytes)) : Uint8Array.from(bytes);
      d.envelope = undefined;
      d.mutation = `protobuf ${tag}`;
      d.reject.push("bytes that are no protobuf message");
      return;
    }
    case "badJson": {
      const [tag, text] = rng.pick([
        ["cut", json.slice(0, Math.max(1, json.length - 3))],
        ["array", "[]"],
        ["string", '"x"'],
        ["number", "7"],
        ["a field of the wrong type", wrongTypeJson(d.method) ?? "[]"],
        ["nested deep", `${'{"process":'.repeat(2000)}{}${"}".repeat(2000)}`],
        ["bom", `\ufeff${json}`],
        ["invalid UTF-8", ""],
      ] as const);
      setHeader(d, "Content-Type", stream ? "application/connect+json" : "application/json");
      frameJson(text);
      if (tag === "invalid UTF-8") {
        const bytes = new Uint8Array(Buffer.concat([Buffer.from('{"path":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]));
        d.body = stream ? envelope(bytes) : bytes;
        d.envelope = undefined;
      }
      d.mutation = `JSON ${tag}`;
      if (tag !== "invalid UTF-8" && tag !== "bom" && tag !== "nested deep") d.reject.push("JSON that is no message of the method's");
      return;
    }
    case "empty":
      d.body = "";
      d.envelope = undefined;
      d.mutation = "empty body";
      if (stream) {
        d.reject.push("a streaming call without its message");
        d.cardinality = true;
      }
      return;
    case "protocolVersion": {
      const v = rng.pick([undefined, "2", "0", "x".repeat(300)]);
      setHeader(d, "Connect-Protocol-Version", v);
      d.mutation = `Connect-Protocol-Version ${v === undefined ? "missing" : v.slice(0, 10)}`;
      return;
    }
    case "endFlag":
      d.body = json;
      setHeader(d, "Content-Type", "application/connect+json");
      d.envelope = { flags: END_STREAM_FLAG };
      d.mutation = "request envelope flagged end-stream";
      d.reject.push("an end-stream envelope from the client");
      // An end-stream envelope is no message: a streaming call gets none (Connect's unimplemented, as for an empty body).
      if (stream) d.cardinality = true;
      return;
    case "twoMessages": {
      const one = new TextEncoder().encode(json);
      setHeader(d, "Content-Type", "application/connect+json");
      d.body = new Uint8Array(Buffer.concat([envelope(one), envelope(one)]));
      d.envelope = undefined;
      d.mutation = "two request messages";
      d.cardinality = true;
      if (json.includes("{{")) d.body = envelope(new TextEncoder().encode("{}"));
      return;
    }
    case "httpMethod": {
      d.httpMethod = rng.pick(["GET", "PUT", "DELETE", "PATCH"]);
      if (d.httpMethod === "GET") {
        d.path += `?encoding=json&message=${encodeURIComponent(json)}&connect=v1`;
        d.body = undefined;
        d.envelope = undefined;
        d.payload = "";
      }
      d.mutation = `${d.httpMethod} instead of POST`;
      d.reject.push("Connect calls are POSTs (no method is marked free of side effects)");
      return;
    }
    default: {
      const [tag, p] = rng.pick([
        ["unknown method", `${d.method.parent.typeName}/Nope`],
        ["lower-case method", `${d.method.parent.typeName}/${d.method.name.toLowerCase()}`],
        ["other service", `process.Filesystem/${d.method.name}`],
        ["grpc reflection", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo"],
        ["trailing slash", `${rpcPath(d.method)}/`],
      ] as const);
      d.path = `${E2B_BASE}/${p}`;
      d.mutation = tag;
      d.reject.push("no such method");
    }
  }
}

/** The credentials gotten wrong (or right another way), as envd's SDK clients send them. */
function access(rng: Rng, d: RpcDraft): void {
  const kind = rng.weighted({ noToken: 2, forged: 2, otherToken: 2, otherId: 2, gone: 2, tokenOnly: 2, root: 1, traffic: 1 });
  d.mutation = `access ${kind}`;
  if (isSharedAccess(kind)) {
    sharedAccess(rng, d, kind);
    return;
  }
  setHeader(d, "X-Access-Token", undefined);
  setHeader(d, "E2B-Traffic-Access-Token", "{{etta.own}}");
  d.reject.push("the traffic token on envd");
}

/** The deadline header made hostile; an invalid one must be refused before anything runs. */
function deadline(rng: Rng, d: RpcDraft): void {
  const [value, bad] = rng.pick([
    ["abc", true],
    ["-1", true],
    ["1.5", true],
    ["99999999999", true],
    ["9999999999", true],
    // Past already: Bay starts nothing (process-service.ts); a quick unary call may still finish before it fires.
    ["0", d.method.name === "Start"],
    ["1", false],
    ["", true],
  ] as const);
  setHeader(d, "Connect-Timeout-Ms", value);
  d.mutation = `Connect-Timeout-Ms ${JSON.stringify(value)}`;
  if (bad) d.reject.push("a deadline that is no valid Connect-Timeout-Ms or already past");
}

/** Request number `index` of the sequence: one envd Connect call. */
export function envdRpcRequest(rng: Rng, index: number): FuzzRequest {
  const method = rng.pick(ENVD_METHODS);
  const stream = streams(method.methodKind);
  const strategy = rng.weighted({ valid: 6, field: 8, framing: 8, access: 4, deadline: 2, hangUp: stream ? 6 : 0 });
  const d = baseDraft(rng, method, strategy === "field");
  if (strategy === "framing") framing(rng, d);
  else if (strategy === "access") access(rng, d);
  else if (strategy === "deadline") deadline(rng, d);
  else if (strategy === "hangUp") {
    d.firstOnly = true;
    d.mutation = `${d.msg.tag}, hung up after the first message`;
  }
  const body = d.body ?? (d.httpMethod === "GET" ? undefined : d.payload);
  const connect: ConnectCall = {
    path: rpcPath(method),
    ...(d.path === `${E2B_BASE}/${rpcPath(method)}` && d.httpMethod === "POST" ? { kind: method.methodKind as Kind } : {}),
    ...(d.envelope && typeof body === "string" ? { envelope: d.envelope } : {}),
    ...(d.firstOnly ? { firstOnly: true } : {}),
    ...(d.unread ? { unread: true } : {}),
    ...(d.cardinality ? { cardinality: true } : {}),
  };
  return {
    index,
    aim: connect.path,
    api: ENVD_API,
    strategy: `envd ${strategy}`,
    mutation: `envd ${d.mutation}`,
    method: d.httpMethod,
    target: d.path,
    headers: d.headers,
    ...(body !== undefined ? { body } : {}),
    transport: "fetch",
    syntax: "valid",
    ...(d.reject.length ? { mustReject: d.reject.join("; ") } : {}),
    connect,
    timeoutMs: 30_000,
  };
}
