/**
 * The fuzzer's check of streamed execs (scripts/fuzz/sse.ts and its verdicts in
 * check.ts): events parsed as the spec's ExecEvents says, a stream that must end
 * with one result or error, and an error event judged like the status its code
 * maps to.
 */
import { describe, expect, test } from "bun:test";
import { judge } from "../../scripts/fuzz/check.ts";
import type { FuzzRequest } from "../../scripts/fuzz/request.ts";
import type { Outcome } from "../../scripts/fuzz/send.ts";
import { loadContract } from "../../scripts/fuzz/spec.ts";
import { checkExecEvents, parseSse } from "../../scripts/fuzz/sse.ts";

const contract = loadContract();
const shell = contract.operations.find((o) => o.id === "execShell")!;
const resultSchema = shell.responses.get(200)!.content.get("application/json")!;
const result = { success: true, output: "hi\n", error: "", exit_code: 0, truncated: false, process_id: null };
const errorEvent = (code: string) =>
  `event: error\ndata: ${JSON.stringify({ error: { code, message: "m", request_id: "r", details: {} } })}\n\n`;

const request: FuzzRequest = {
  index: 0,
  aim: "execShell",
  strategy: "valid",
  mutation: "valid",
  method: "POST",
  target: "/v1/sandboxes/sandbox-1/shell/exec",
  headers: [["Accept", "text/event-stream"]],
  transport: "fetch",
  syntax: "valid",
  timeoutMs: 1000,
};
const streamed = (body: string): Outcome => ({
  kind: "response",
  status: 200,
  headers: [
    ["content-type", "text/event-stream"],
    ["x-request-id", "r"],
  ],
  body: new TextEncoder().encode(body),
  ms: 1,
});

describe("parseSse", () => {
  test("events with their names and data, comments skipped, CRLF or LF", () => {
    expect(parseSse(': ping\n\nevent: stdout\ndata: {"text":"a"}\n\r\nevent: result\r\ndata: {}\r\n\r\n')).toEqual([
      { event: "stdout", data: '{"text":"a"}' },
      { event: "result", data: "{}" },
    ]);
  });
});

describe("checkExecEvents", () => {
  test("output events then one result matching the non-streamed body", () => {
    const ok = `event: stdout\ndata: {"text":"hi\\n"}\n\n: ping\n\nevent: result\ndata: ${JSON.stringify(result)}\n\n`;
    expect(checkExecEvents(ok, resultSchema, contract.errorBody)).toEqual({ violations: [], end: { kind: "result" } });
  });

  test("a stream cut before its last event, a result that breaks the schema, events out of order", () => {
    expect(checkExecEvents('event: stdout\ndata: {"text":"a"}\n\n', resultSchema, contract.errorBody).violations).toEqual([
      "stream does not end with a result or error event",
    ]);
    const bad = checkExecEvents(`event: result\ndata: ${JSON.stringify({ success: "yes" })}\n\n`, resultSchema, contract.errorBody);
    expect(bad.violations[0]).toStartWith("stream result breaks the response schema");
    const twice = `event: result\ndata: ${JSON.stringify(result)}\n\n${errorEvent("timeout")}`;
    expect(checkExecEvents(twice, resultSchema, contract.errorBody).violations).toEqual(["stream has a result event before its last one"]);
    expect(
      checkExecEvents(`event: stdout\ndata: 1\n\nevent: result\ndata: ${JSON.stringify(result)}\n\n`, resultSchema, contract.errorBody)
        .violations,
    ).toEqual(["stream stdout event without a text"]);
  });

  test("an error event must be an ErrorBody; its code is reported", () => {
    expect(checkExecEvents(errorEvent("timeout"), resultSchema, contract.errorBody)).toEqual({
      violations: [],
      end: { kind: "error", code: "timeout" },
    });
    expect(checkExecEvents('event: error\ndata: {"message":"x"}\n\n', resultSchema, contract.errorBody).violations[0]).toStartWith(
      "stream error event breaks ErrorBody",
    );
  });
});

describe("judging a streamed exec", () => {
  test("a timeout mid-stream is fine; internal_error is a finding; ship_error only without a container death", () => {
    expect(judge(contract, request, request.target, streamed(errorEvent("timeout"))).violations).toEqual([]);
    expect(judge(contract, request, request.target, streamed(errorEvent("internal_error"))).violations).toEqual([
      "stream ended with internal_error",
    ]);
    expect(judge(contract, request, request.target, streamed(errorEvent("ship_error"))).violations).toEqual([
      "stream ended with ship_error without any runtime fault",
    ]);
    expect(judge(contract, request, request.target, streamed(errorEvent("ship_error")), "die (exit 137)").violations).toEqual([]);
  });
});

describe("which streams are an exec's", () => {
  test("the spec marks ExecEvents on the exec operations only; a followed output or a watch is read for a window", () => {
    const marked = contract.operations.filter((o) => o.responses.get(200)?.execEvents).map((o) => o.id);
    expect(marked.sort()).toEqual(["execCode", "execPython", "execShell"]);
    const follow = contract.operations.find((o) => o.id === "readShellProcessOutput");
    if (follow) {
      const req = { ...request, aim: follow.id, method: follow.method, target: "/v1/sandboxes/sandbox-1/shell/processes/p-1/output" };
      // A window of a never-ending stream has no last event: that is not a finding there.
      expect(judge(contract, req, req.target, streamed('event: stdout\ndata: {"text":"a"}\n\n')).violations).toEqual([]);
    }
  });
});
