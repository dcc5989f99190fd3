/**
 * The fuzzer's coverage of envd's Connect RPC services (scripts/fuzz/envd-rpc*.ts,
 * connect-wire.ts): requests generated from the descriptors, mixed into the one
 * sequence at a modest share, hostile ones marked when Bay must refuse them and
 * harmless to the fixtures; and the judge, which holds answers to the Connect
 * protocol (error JSON and its status, output messages, envelopes and the end of a
 * stream) and to check.ts's 5xx rules.
 */
import { describe, expect, test } from "bun:test";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { StatResponseSchema } from "../../src/bay/e2b/generated/envd/filesystem/filesystem_pb.ts";
import { StartResponseSchema } from "../../src/bay/e2b/generated/envd/process/process_pb.ts";
import { refuseDotSegmentEnd } from "../../src/bay/domain/paths.ts";
import { toWorkspacePath } from "../../src/bay/e2b/paths.ts";
import { judge } from "../../scripts/fuzz/check.ts";
import { CONNECT_CODE_STATUS, connectErrorProblem, envelope, splitEnvelopes } from "../../scripts/fuzz/connect-wire.ts";
import { e2bEscapes } from "../../scripts/fuzz/e2b.ts";
import { ENVD_METHODS, ENVD_SHARE, envdRpcRequest, rpcPath } from "../../scripts/fuzz/envd-rpc.ts";
import { wrongTypeJson } from "../../scripts/fuzz/envd-rpc-messages.ts";
import { connectType } from "../../scripts/fuzz/envd-rpc-check.ts";
import { RequestGenerator } from "../../scripts/fuzz/generate.ts";
import { type FuzzRequest, makeResolver } from "../../scripts/fuzz/request.ts";
import { type Outcome, rawBytes } from "../../scripts/fuzz/send.ts";
import { loadContracts } from "../../scripts/fuzz/spec.ts";
import { Rng } from "../../scripts/lib/rng.ts";

const contract = loadContracts();
const enc = new TextEncoder();

const sample = (() => {
  let cached: FuzzRequest[] | undefined;
  return () => {
    if (!cached) {
      const rng = new Rng(9);
      cached = Array.from({ length: 4000 }, (_, i) => envdRpcRequest(rng, i));
    }
    return cached;
  };
})();

const call = (path: string, extra: Partial<FuzzRequest> = {}, kind: FuzzRequest["connect"] = undefined): FuzzRequest => {
  const method = ENVD_METHODS.find((m) => rpcPath(m) === path)!;
  const streaming = method.methodKind !== "unary";
  return {
    index: 0,
    aim: path,
    api: "envd",
    strategy: "envd valid",
    mutation: "envd valid",
    method: "POST",
    target: `/e2b/${path}`,
    headers: [["Content-Type", streaming ? "application/connect+json" : "application/json"]],
    body: "{}",
    transport: "fetch",
    syntax: "valid",
    connect: kind ?? { path, kind: method.methodKind },
    timeoutMs: 1000,
    ...extra,
  };
};
const answer = (status: number, body: Uint8Array | string, type: string, extra: Partial<Outcome> = {}): Outcome => ({
  kind: "response",
  status,
  headers: [
    ["content-type", type],
    ["x-request-id", "r"],
  ],
  body: typeof body === "string" ? enc.encode(body) : body,
  ms: 1,
  ...extra,
});
const verdict = (req: FuzzRequest, o: Outcome, fault?: string) => judge(contract, req, req.target, o, fault);
const endStream = (end: unknown) => envelope(enc.encode(JSON.stringify(end)), 0x02);
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const startEvent = envelope(
  enc.encode(toJsonString(StartResponseSchema, create(StartResponseSchema, { event: { event: { case: "start", value: { pid: 7 } } } }))),
);

describe("generating envd Connect calls", () => {
  test("a modest share of the one sequence, every method of both services aimed at, the same for a seed", () => {
    const g = new RequestGenerator(contract, { maxBodyBytes: 1024, maxUploadBytes: 2048 });
    const rng = new Rng(2);
    const seq = Array.from({ length: 3000 }, (_, i) => g.next(rng, i));
    const envd = seq.filter((r) => r.connect);
    expect(envd.length / seq.length).toBeGreaterThan(ENVD_SHARE - 0.03);
    expect(envd.length / seq.length).toBeLessThan(ENVD_SHARE + 0.03);
    expect(envd.every((r) => r.api === "envd")).toBe(true);
    expect(ENVD_METHODS.map(rpcPath)).toContain("process.Process/Start");
    expect(ENVD_METHODS.map(rpcPath)).toContain("filesystem.Filesystem/RemoveWatcher");
    const aimed = new Set(sample().map((r) => r.connect!.path));
    expect([...aimed].sort()).toEqual(ENVD_METHODS.map(rpcPath).sort());
    const again = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 50 }, (_, i) => JSON.stringify(envdRpcRequest(r, i)));
    };
    expect(again(4)).toEqual(again(4));
  });

  test("valid calls are Connect calls with the live sandbox's credentials, in either codec; streams are enveloped", () => {
    const valid = sample().filter((r) => r.strategy === "envd valid");
    expect(valid.length).toBeGreaterThan(100);
    const types = new Set(valid.map((r) => r.headers.find(([k]) => k === "Content-Type")?.[1]));
    expect([...types].sort()).toEqual(["application/connect+json", "application/connect+proto", "application/json", "application/proto"]);
    for (const r of valid) {
      expect(r.method).toBe("POST");
      expect(r.connect!.kind).toBeDefined();
      expect(r.headers).toContainEqual(["X-Access-Token", "{{etok.own}}"]);
      const t = connectType(r.headers.find(([k]) => k === "Content-Type")?.[1]);
      expect(t?.stream).toBe(r.connect!.kind !== "unary");
      if (t?.stream) expect(typeof r.body === "string" ? r.connect!.envelope?.flags : r.body![0]).toBe(0);
    }
  });

  test("an envelope is framed when sending: its length counts the filled-in placeholders, plus what a truncated one claims", () => {
    const req = call("process.Process/Connect", { body: '{"process":{"pid":"{{epid.own}}"}}' });
    req.connect = { ...req.connect!, envelope: { flags: 0, claimedExtra: 100 } };
    const bytes = rawBytes(req, makeResolver({ "epid.own": "12345" }), 1);
    const body = bytes.subarray(Buffer.from(bytes).indexOf("\r\n\r\n") + 4);
    expect(body[0]).toBe(0);
    expect(new DataView(body.buffer, body.byteOffset).getUint32(1)).toBe(body.byteLength - 5 + 100);
    expect(new TextDecoder().decode(body.subarray(5))).toBe('{"process":{"pid":"12345"}}');
  });

  test("paths that leave the home, bad pids and broken framing or credentials are marked; nothing removes the fixtures' files", () => {
    const reqs = sample();
    for (const r of reqs.filter(
      (r) => /^envd (Stat|MakeDir|Remove|WatchDir|CreateWatcher) /.test(r.mutation) && typeof r.body === "string",
    )) {
      const path = (JSON.parse(r.body as string) as { path: string }).path;
      if (r.strategy === "envd field" && e2bEscapes(path)) expect(r.mustReject).toContain("outside the sandbox's files");
    }
    const marked = (prefix: string) => reqs.filter((r) => r.mutation.startsWith(prefix));
    for (const p of [
      "envd access noToken",
      "envd access forged",
      "envd access gone",
      "envd GET instead",
      "envd protobuf ",
      "envd unknown method",
    ]) {
      expect(marked(p).length).toBeGreaterThan(0);
      for (const r of marked(p)) expect(r.mustReject).toBeDefined();
    }
    // A client's end-stream envelope is no message: a streaming method's call then has none, as an empty body (long run seed 1746923721, #4873).
    const flagged = marked("envd request envelope flagged end-stream");
    expect(flagged.length).toBeGreaterThan(0);
    for (const r of flagged) expect(Boolean(r.connect!.cardinality)).toBe(r.connect!.kind !== "unary");
    // The token alone names its sandbox (older SDKs): nothing about the credentials to refuse.
    for (const r of marked("envd access tokenOnly")) expect(r.mustReject ?? "").not.toMatch(/token|killed|sandbox than/);
    // Remove and Move's source stay in the scratch directory or are paths Bay must refuse.
    for (const r of reqs.filter((r) => /Filesystem\/(Remove|Move)$/.test(r.connect!.path) && typeof r.body === "string")) {
      let m: { path?: string; source?: string };
      try {
        m = JSON.parse(r.body as string);
      } catch {
        continue;
      }
      const p = m.path ?? m.source;
      if (typeof p !== "string") continue;
      let target: string;
      try {
        refuseDotSegmentEnd(p); // Remove and Move refuse `…/..` as given
        target = toWorkspacePath(p);
      } catch {
        continue; // refused by Bay's path rules
      }
      expect(["fuzz", "fuzz/hello.txt", "fuzz/rpc"]).not.toContain(target);
      if (target === ".") expect(r.mustReject ?? m.path === undefined).toBeTruthy();
    }
    // A Start that may wait runs under a deadline.
    for (const r of reqs.filter((r) => / Start (pty|cmd|stdin)/.test(r.mutation) && r.strategy === "envd field"))
      expect(r.headers.some(([k]) => k === "Connect-Timeout-Ms")).toBe(true);
    expect(reqs.some((r) => r.connect!.firstOnly)).toBe(true);
  });

  test("a field of the wrong JSON type is built from the input message's descriptor", () => {
    const stat = ENVD_METHODS.find((m) => rpcPath(m) === "filesystem.Filesystem/Stat")!;
    const input = ENVD_METHODS.find((m) => rpcPath(m) === "process.Process/SendInput")!;
    expect(wrongTypeJson(stat)).toBe('{"path":5}');
    expect(wrongTypeJson(input)).toBe('{"process":"x"}');
  });
});

describe("the Connect wire", () => {
  test("envelopes split back, an incomplete last one is left over; error objects need a known string code", () => {
    const both = cat(envelope(enc.encode("ab")), envelope(enc.encode("{}"), 2), Uint8Array.from([0, 0, 0, 0, 9, 1]));
    const { envelopes, rest } = splitEnvelopes(both);
    expect(envelopes.map((e) => [e.flags, new TextDecoder().decode(e.data)])).toEqual([
      [0, "ab"],
      [2, "{}"],
    ]);
    expect(rest).toBe(6);
    expect(connectErrorProblem({ code: "not_found", message: "x" })).toBeNull();
    expect(connectErrorProblem({ code: 404, message: "x" })).toBe("no string code");
    expect(connectErrorProblem({ code: "nope" })).toContain("unknown code");
    expect(CONNECT_CODE_STATUS.failed_precondition).toBe(400);
    expect(CONNECT_CODE_STATUS.unavailable).toBe(503);
  });
});

describe("judging Connect answers", () => {
  const stat = call("filesystem.Filesystem/Stat");
  const statOk = toJsonString(StatResponseSchema, create(StatResponseSchema, { entry: { name: "a", path: "/home/user/a" } }));

  test("a unary success must decode as the output, in the request's codec, and carry X-Request-Id", () => {
    expect(verdict(stat, answer(200, statOk, "application/json")).violations).toEqual([]);
    expect(verdict(stat, answer(200, '{"entry":{"nope":1}}', "application/json")).violations).toContain(
      "unary success body does not decode as the method's output",
    );
    expect(verdict(stat, answer(200, statOk, "application/proto")).violations).toContain("success not served in the request's codec");
    const proto = call("filesystem.Filesystem/Stat", { headers: [["Content-Type", "application/proto"]] });
    const bin = toBinary(StatResponseSchema, create(StatResponseSchema, { entry: { name: "a" } }));
    expect(verdict(proto, answer(200, bin, "application/proto")).violations).toEqual([]);
    const noId = { ...answer(200, statOk, "application/json"), headers: [["content-type", "application/json"]] as Array<[string, string]> };
    expect(verdict(stat, noId).violations).toEqual(["no X-Request-Id"]);
    const refused = call("filesystem.Filesystem/Stat", { mustReject: "a path outside the sandbox's files" });
    expect(verdict(refused, answer(200, statOk, "application/json")).violations[0]).toStartWith("success for a request Bay must refuse");
  });

  test("an error is Connect's error JSON with the status its code stands for; 415 without a body only for a type that does not fit", () => {
    expect(verdict(stat, answer(404, '{"code":"not_found","message":"x"}', "application/json")).violations).toEqual([]);
    expect(verdict(stat, answer(400, '{"code":"not_found","message":"x"}', "application/json")).violations).toEqual([
      "Connect code not_found with HTTP status 400, not 404",
    ]);
    expect(verdict(stat, answer(404, '{"code":404,"message":"x"}', "application/json")).violations).toEqual([
      "error answer 404 is not Connect's error JSON",
    ]);
    expect(verdict(stat, answer(415, "", "")).violations).toEqual(["415 for a Content-Type Connect accepts for the method"]);
    const wrongType = call("filesystem.Filesystem/Stat", { headers: [["Content-Type", "text/plain"]] });
    expect(verdict(wrongType, answer(415, "", "")).violations).toEqual([]);
    // No Connect call (another HTTP method, an unknown method): a 404/405, E2B's body or Connect's.
    const get = call("filesystem.Filesystem/Stat", { method: "GET", mustReject: "POST only" }, { path: "filesystem.Filesystem/Stat" });
    expect(verdict(get, answer(404, '{"code":404,"message":"no E2B route"}', "application/json")).violations).toEqual([]);
    expect(verdict(get, answer(200, statOk, "application/json")).violations[0]).toContain("no Connect call");
  });

  test("5xx: internal is a bug; unimplemented for client streaming or an encoding Bay does not offer; unavailable needs a runtime fault", () => {
    const internal = verdict(stat, answer(500, '{"code":"internal","message":"parse binary: x"}', "application/json"));
    expect(internal.violations).toEqual(["500 internal not explained by the runtime"]);
    expect(internal.serverError?.legit).toBe(false);
    const gz = call("filesystem.Filesystem/Stat", {
      headers: [
        ["Content-Type", "application/json"],
        ["Content-Encoding", ""],
      ],
    });
    const unimpl = answer(501, '{"code":"unimplemented","message":"unknown compression"}', "application/json");
    expect(verdict(gz, unimpl).serverError?.legit).toBe(true);
    expect(verdict(stat, unimpl).violations).toEqual(["501 unimplemented not explained by the runtime"]);
    const unavailable = answer(503, '{"code":"unavailable","message":"x"}', "application/json");
    expect(verdict(stat, unavailable).violations).toHaveLength(1);
    expect(verdict(stat, unavailable, "exited with 137").violations).toEqual([]);
  });

  test("a stream: messages decoding as the output, one end-stream last, unless the fuzzer hung up; no message for a refused call", () => {
    const start = call("process.Process/Start");
    const type = "application/connect+json";
    expect(verdict(start, answer(200, cat(startEvent, endStream({})), type)).violations).toEqual([]);
    expect(verdict(start, answer(200, startEvent, type)).violations).toEqual(["stream without an end-stream message"]);
    expect(verdict(start, answer(200, startEvent, type, { hungUp: true })).violations).toEqual([]);
    expect(verdict(start, answer(200, cat(endStream({}), startEvent), type)).violations).toContain("bytes after the end-stream message");
    expect(verdict(start, answer(200, cat(envelope(enc.encode('{"x":1}')), endStream({})), type)).violations).toContain(
      "stream message does not decode as the method's output",
    );
    expect(verdict(start, answer(200, endStream({ error: { code: 404 } }), type)).violations).toEqual([
      "end-stream error is not a Connect error",
    ]);
    const refused = call("process.Process/Start", { mustReject: "a cwd outside the sandbox's files" });
    expect(verdict(refused, answer(200, endStream({ error: { code: "invalid_argument", message: "x" } }), type)).violations).toEqual([]);
    expect(verdict(refused, answer(200, cat(startEvent, endStream({})), type)).violations[0]).toStartWith("stream messages for a request");
    expect(verdict(start, answer(200, endStream({ error: { code: "internal" } }), type)).violations).toEqual([
      "stream ended with internal",
    ]);
    const lost = endStream({ error: { code: "unavailable", message: "gone" } });
    expect(verdict(start, answer(200, lost, type)).violations).toEqual(["stream ended with unavailable not explained by the runtime"]);
    expect(verdict(start, answer(200, lost, type), "died").violations).toEqual([]);
    // A server-streaming call without its one message: unimplemented is Connect's answer (connect-go's too).
    const missing = endStream({ error: { code: "unimplemented", message: "missing input message" } });
    const empty = call("filesystem.Filesystem/WatchDir", { body: "", mustReject: "no message" });
    expect(verdict(empty, answer(200, missing, type)).violations).toEqual(["stream ended with unimplemented not explained by the runtime"]);
    empty.connect = { ...empty.connect!, cardinality: true };
    expect(verdict(empty, answer(200, missing, type)).violations).toEqual([]);
    const streamInput = call("process.Process/StreamInput");
    expect(verdict(streamInput, answer(200, endStream({ error: { code: "unimplemented" } }), type)).violations).toEqual([]);
  });

  test("a closed connection is a finding, except after a body over the limit Bay stops reading", () => {
    const closed: Outcome = { kind: "closed", status: 0, headers: [], body: new Uint8Array(), ms: 1 };
    expect(verdict(stat, closed).violations).toEqual(["connection closed without an answer"]);
    const big = call("filesystem.Filesystem/Stat", { body: "x".repeat(10) });
    big.connect = { ...big.connect!, unread: true };
    const v = verdict(big, closed);
    expect(v.violations).toEqual([]);
    expect(v.known).toBeDefined();
  });
});
