/**
 * Judging answers of envd's Connect RPC services by the Connect protocol
 * (connectrpc.com/docs/protocol) and the methods' descriptors:
 *
 * - an error is Connect's error JSON `{code, message}` with a known code, served as
 *   application/json with the HTTP status the code stands for; 415 (a Content-Type
 *   that is not Connect's for the method's kind) may come without a body. A request
 *   that is no Connect call (another HTTP method, an unknown method) gets a 404 or
 *   405, in Connect's error JSON or E2B's `{code: <status>, message}`;
 * - a unary success decodes as the method's output message, in the request's codec;
 * - a streamed answer is 200 with well-formed envelopes, each message decoding as
 *   the output message, ending with one end-stream message (JSON, its error a
 *   Connect error), unless the fuzzer hung up first;
 * - a request Bay must refuse (`mustReject`) gets no success: no 2xx unary answer,
 *   no message in a stream;
 * - 5xx, and a stream's error codes that stand for one, as check.ts rules them:
 *   internal and unknown are bugs; unavailable only with a runtime fault (the
 *   sandbox's container died during the call); unimplemented only for client
 *   streaming (Bay's documented StreamInput), a compression Bay does not offer, or a
 *   streaming call without its one message (Connect's code for that, as connect-go's);
 *   deadline_exceeded is a deadline's; data_loss a watch that lost changes.
 */
import { type DescMessage, fromBinary, fromJsonString } from "@bufbuild/protobuf";
import type { Verdict } from "./check.ts";
import { CONNECT_CODE_STATUS, COMPRESSED_FLAG, connectErrorProblem, END_STREAM_FLAG, splitEnvelopes } from "./connect-wire.ts";
import { methodOf } from "./envd-rpc.ts";
import { cutAnswerLimitation } from "./known.ts";
import type { FuzzRequest } from "./request.ts";
import type { Outcome } from "./send.ts";

const header = (o: Outcome, name: string) => o.headers.find(([k]) => k === name)?.[1];
const reqHeader = (req: FuzzRequest, name: string) => req.headers.find(([k]) => k.toLowerCase() === name)?.[1];
const decoder = new TextDecoder();

/** The Connect Content-Type a request was sent with, parsed as the protocol reads it (undefined: not Connect's). */
export function connectType(value: string | undefined): { stream: boolean; codec: "json" | "proto" } | undefined {
  const m = /^application\/(connect\+)?(?:(json)(?:; ?charset=utf-?8)?|(proto))$/i.exec(value ?? "");
  return m ? { stream: m[1] !== undefined, codec: m[2] ? "json" : "proto" } : undefined;
}

/** Whether a message decodes as `schema` in `codec` (unknown fields refused in JSON: Bay writes only its own). */
function decodes(schema: DescMessage, codec: "json" | "proto", data: Uint8Array): string | null {
  try {
    if (codec === "proto") fromBinary(schema, data);
    else fromJsonString(schema, decoder.decode(data));
    return null;
  } catch (e) {
    return (e as Error).message.slice(0, 160);
  }
}

/** Why a 5xx (or the error code of a stream standing for one) is no fault of Bay's, if it is. */
function explained(req: FuzzRequest, code: string | null, runtimeFault: string | undefined): string | undefined {
  if (code === "deadline_exceeded") return "a deadline";
  if (code === "unavailable" && runtimeFault !== undefined) return `container ${runtimeFault}`;
  if (code === "unimplemented") {
    if (req.connect?.kind === "client_streaming") return "client streaming, which Bay does not serve";
    if (req.connect?.cardinality) return "no message or two for a method that takes one";
    // Named, even empty: Connect refuses an encoding it does not know (an empty name included) as unimplemented.
    if (reqHeader(req, "connect-content-encoding") !== undefined || reqHeader(req, "content-encoding") !== undefined)
      return "a compression Bay does not offer";
  }
  return undefined;
}

/** Judges one answer to a Connect call. */
export function judgeConnect(req: FuzzRequest, o: Outcome, runtimeFault?: string): Verdict {
  const call = req.connect!;
  // A request that is no Connect call of the method (another HTTP method or path) counts apart from the method's.
  const v: Verdict = { op: call.kind ? call.path : `${call.path} (no Connect call)`, violations: [], details: [] };
  const fail = (reason: string, detail?: string) => {
    v.violations.push(reason);
    if (detail) v.details.push(detail);
  };
  if (o.kind === "timeout") {
    fail("no answer before the deadline");
    return v;
  }
  if (o.kind === "closed" || o.cut) {
    v.known = call.unread ? cutAnswerLimitation(req, undefined) : undefined;
    if (!v.known) fail(o.cut ? "answer cut short: the connection ended inside the body" : "connection closed without an answer", o.detail);
    return v;
  }
  if (o.kind === "error") {
    fail("answer is not HTTP", o.detail);
    return v;
  }
  if (o.kind !== "response") return v;
  if (!header(o, "x-request-id")) fail("no X-Request-Id");

  const status = o.status;
  const type = header(o, "content-type") ?? "";
  const sent = connectType(reqHeader(req, "content-type"));
  const method = methodOf(call.path);
  const streaming = call.kind !== undefined && call.kind !== "unary";
  // The Content-Type fits the method's kind: Connect answers the call; otherwise 415.
  const fits = call.kind !== undefined && sent !== undefined && sent.stream === streaming;
  let code: string | null = null;

  if (status >= 200 && status < 300) {
    if (!fits || !method) {
      fail(`${status} for a request that is no Connect call of the method`);
      return v;
    }
    if (status !== 200) fail(`Connect success with status ${status}, not 200`);
    const expected = streaming ? `application/connect+${sent.codec}` : `application/${sent.codec}`;
    if (type.split(";")[0]!.trim().toLowerCase() !== expected) fail("success not served in the request's codec", `Content-Type: ${type}`);
    if (!streaming) {
      if (req.mustReject) fail(`success for a request Bay must refuse (${req.mustReject.split(";")[0]})`, req.mustReject);
      const bad = decodes(method.output, sent.codec, o.body);
      if (bad) fail("unary success body does not decode as the method's output", bad);
    } else {
      const end = checkStream(req, o, method.output, sent.codec, fail);
      code = end;
      if (end === "internal" || end === "unknown") fail(`stream ended with ${end}`);
      else if (end !== null && end !== "data_loss" && CONNECT_CODE_STATUS[end]! >= 500 && !explained(req, end, runtimeFault))
        fail(`stream ended with ${end} not explained by the runtime`);
    }
    return v;
  }

  // An error answer.
  if (status === 415 && o.body.byteLength === 0) {
    if (fits) fail("415 for a Content-Type Connect accepts for the method");
    return v;
  }
  const noCall = call.kind === undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(o.body));
  } catch {
    parsed = undefined;
  }
  const e2bShape =
    noCall &&
    parsed !== null &&
    typeof parsed === "object" &&
    (parsed as { code?: unknown }).code === status &&
    typeof (parsed as { message?: unknown }).message === "string";
  if (noCall && status !== 404 && status !== 405 && status < 500) fail(`status ${status} for a request that is no Connect call`);
  if (!e2bShape && !(noCall && o.body.byteLength === 0)) {
    const problem = parsed === undefined ? "not JSON" : connectErrorProblem(parsed);
    if (problem) fail(`error answer ${status} is not Connect's error JSON`, `${problem}: ${decoder.decode(o.body.subarray(0, 160))}`);
    else {
      code = (parsed as { code: string }).code;
      if (CONNECT_CODE_STATUS[code] !== status) fail(`Connect code ${code} with HTTP status ${status}, not ${CONNECT_CODE_STATUS[code]}`);
    }
    if (!/^application\/json/i.test(type)) fail(`error answer ${status} not served as application/json`, `Content-Type: ${type}`);
  }
  if (status >= 500) {
    const cause = explained(req, code, runtimeFault);
    v.serverError = { status, code, legit: cause !== undefined, ...(cause ? { cause } : {}) };
    if (!cause) fail(`${status} ${code ?? ""} not explained by the runtime`.replace("  ", " "));
  }
  return v;
}

/**
 * A streamed answer's envelopes: messages that decode as `output`, one end-stream
 * message last (unless the fuzzer hung up), no success for a request Bay must refuse.
 * Returns the end-stream error's code (null: none, or no end seen).
 */
function checkStream(
  req: FuzzRequest,
  o: Outcome,
  output: DescMessage,
  codec: "json" | "proto",
  fail: (reason: string, detail?: string) => void,
): string | null {
  const { envelopes, rest } = splitEnvelopes(o.body);
  const endAt = envelopes.findIndex((e) => (e.flags & END_STREAM_FLAG) !== 0);
  const messages = endAt < 0 ? envelopes : envelopes.slice(0, endAt);
  for (const m of messages) {
    if (m.flags & COMPRESSED_FLAG) fail("stream message compressed though the client offered no compression");
    else if (m.flags !== 0) fail("stream message with unknown flags", `flags ${m.flags}`);
    else {
      const bad = decodes(output, codec, m.data);
      if (bad) {
        fail("stream message does not decode as the method's output", bad);
        break;
      }
    }
  }
  if (req.mustReject && messages.length > 0)
    fail(`stream messages for a request Bay must refuse (${req.mustReject.split(";")[0]})`, req.mustReject);
  if (endAt < 0) {
    if (!o.hungUp) fail("stream without an end-stream message");
    return null;
  }
  if (endAt !== envelopes.length - 1 || rest > 0) fail("bytes after the end-stream message");
  let end: unknown;
  try {
    end = JSON.parse(decoder.decode(envelopes[endAt]!.data));
  } catch {
    fail("end-stream message that is not JSON");
    return null;
  }
  if (!end || typeof end !== "object" || Array.isArray(end)) {
    fail("end-stream message that is not an object");
    return null;
  }
  const err = (end as { error?: unknown }).error;
  if (err === undefined) return null;
  const problem = connectErrorProblem(err);
  if (problem) {
    fail("end-stream error is not a Connect error", problem);
    return null;
  }
  return (err as { code: string }).code;
}
