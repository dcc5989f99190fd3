/**
 * The fuzzer's own logic (scripts/fuzz): its schema validator, its verdicts on
 * answers, its raw HTTP parser and its generator's determinism. A checker that
 * misjudges would report false findings or hide real ones, so it is tested on
 * answers whose verdict is known.
 */
import { describe, expect, test } from "bun:test";
import { judge } from "../../scripts/fuzz/check.ts";
import { RequestGenerator } from "../../scripts/fuzz/generate.ts";
import { assertSupported, validate } from "../../scripts/fuzz/json-schema.ts";
import { escapes } from "../../scripts/fuzz/multipart.ts";
import { parseResponse } from "../../scripts/fuzz/raw-http.ts";
import { type FuzzRequest, pctEncode, renderRequest } from "../../scripts/fuzz/request.ts";
import type { Outcome } from "../../scripts/fuzz/send.ts";
import { loadContract } from "../../scripts/fuzz/spec.ts";
import { Rng } from "../../scripts/lib/rng.ts";

const contract = loadContract();

const request = (over: Partial<FuzzRequest>): FuzzRequest => ({
  index: 0,
  aim: "getSandbox",
  strategy: "valid",
  mutation: "valid",
  method: "GET",
  target: "/v1/sandboxes/sandbox-1",
  headers: [["X-Owner", "alice"]],
  transport: "fetch",
  syntax: "valid",
  timeoutMs: 1000,
  ...over,
});

const answer = (status: number, body: unknown, headers: Array<[string, string]> = []): Outcome => ({
  kind: "response",
  status,
  headers: [["content-type", "application/json"], ...headers],
  body: new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body)),
  ms: 1,
});

const error = (code: string, requestId = "rid-1") => ({ error: { code, message: "m", request_id: requestId, details: {} } });

const sandbox = {
  id: "sandbox-1",
  profile: "python-default",
  workspace_id: "ws-1",
  status: "idle",
  capabilities: ["python"],
  created_at: "2026-01-01T00:00:00.000Z",
  expires_at: null,
  idle_expires_at: null,
  last_error: null,
};

describe("the spec as the fuzzer reads it", () => {
  test("every operation has an id, a success status and the error codes its descriptions name", () => {
    expect(contract.operations.length).toBeGreaterThan(25);
    for (const op of contract.operations) {
      expect(op.id).toBeTruthy();
      expect([...op.responses.keys()].some((s) => s < 300)).toBe(true);
    }
    const get = contract.operations.find((o) => o.id === "getSandbox")!;
    expect(get.responses.get(404)!.errorCodes.sort()).toEqual(["file_not_found", "not_found"]);
  });

  test("schemas use only what the validator checks; a constraint it does not know stops it", () => {
    expect(() => assertSupported({ type: "string", minLength: 1 }, "x")).not.toThrow();
    expect(() => assertSupported({ type: "string", anyOf: [] } as never, "x")).toThrow(/anyOf/);
    const warnings: string[] = [];
    assertSupported({ type: "boolean", "cut off by a comma": null } as never, "x", (w) => warnings.push(w));
    expect(warnings).toHaveLength(1);
  });
});

describe("validate", () => {
  const schema = {
    type: "object",
    additionalProperties: false,
    required: ["code"],
    properties: {
      code: { type: "string", maxLength: 2 },
      at: { type: ["string", "null"], format: "date-time" },
      n: { type: "integer", maximum: 3 },
    },
  };
  test("accepts what the schema allows, counting length in code points", () => {
    expect(validate(schema, { code: "😀é", at: null, n: 3 })).toEqual([]);
    expect(validate(schema, { code: "a", at: "2026-01-01T00:00:00Z" })).toEqual([]);
  });
  test("reports types, required, extra properties, limits and formats", () => {
    expect(validate(schema, { code: 1 })[0]).toContain("expected string");
    expect(validate(schema, {})[0]).toContain('missing required "code"');
    expect(validate(schema, { code: "a", x: 1 })[0]).toContain('unexpected property "x"');
    expect(validate(schema, { code: "abc" })[0]).toContain("longer than 2");
    expect(validate(schema, { code: "a", n: 1.5 })[0]).toContain("expected integer");
    expect(validate(schema, { code: "a", n: 4 })[0]).toContain("above 3");
    expect(validate(schema, { code: "a", at: "yesterday" })[0]).toContain("date-time");
  });
});

describe("judge", () => {
  test("a listed success with a body matching its schema is clean", () => {
    const v = judge(contract, request({}), "/v1/sandboxes/sandbox-1", answer(200, sandbox, [["x-request-id", "r"]]));
    expect(v.op).toBe("getSandbox");
    expect(v.violations).toEqual([]);
  });

  test("/docs/ (no operation) may redirect to ../docs with its query, and only there; any other redirect off the spec is a finding", () => {
    const to = (target: string, location: string) =>
      judge(
        contract,
        request({ target }),
        target,
        answer(308, "", [
          ["x-request-id", "r"],
          ["location", location],
        ]),
      );
    expect(to("/docs/", "../docs").violations).toEqual([]);
    expect(to("/docs/assets/..", "../docs").violations).toEqual([]);
    expect(to("/docs/?a=1", "../docs?a=1").violations).toEqual([]);
    expect(to("/docs/", "https://elsewhere/").violations).toEqual(["/docs/ redirects elsewhere than ../docs"]);
    expect(to("/v1/", "../v1").violations).toEqual(["308 for a request that matches no operation"]);
  });

  test("a success body that breaks the schema, a success the spec refuses, an unlisted status", () => {
    const bad = judge(
      contract,
      request({}),
      "/v1/sandboxes/sandbox-1",
      answer(200, { ...sandbox, status: "zombie" }, [["x-request-id", "r"]]),
    );
    expect(bad.violations).toEqual(["success body breaks the response schema"]);
    const refused = judge(
      contract,
      request({ mustReject: "another owner's resource" }),
      "/v1/sandboxes/x",
      answer(200, sandbox, [["x-request-id", "r"]]),
    );
    expect(refused.violations[0]).toContain("success for a request the spec refuses");
    const unlisted = judge(contract, request({}), "/v1/sandboxes/x", answer(413, error("payload_too_large", "r"), [["x-request-id", "r"]]));
    expect(unlisted.violations).toEqual(["status 413 not in the spec for this operation"]);
  });

  test("a server's answer through a port is the server's: any status, any body; it must carry the sandbox CSP and no cookie", () => {
    const target = "/v1/sandboxes/sandbox-1/ports/8080/deep/path/";
    const req = request({ aim: "portDelete", method: "DELETE", target });
    const csp: Array<[string, string]> = [
      ["x-request-id", "r"],
      ["x-bay-upstream", "501"],
      ["content-security-policy", "sandbox allow-scripts"],
    ];
    const own = judge(contract, req, target, answer(501, "<html>Unsupported method</html>", csp));
    expect([own.op, own.violations]).toEqual(["portDelete", []]);
    expect(own.serverError).toBeUndefined();
    const leaky = judge(
      contract,
      req,
      target,
      answer(200, "x", [
        ["x-request-id", "r"],
        ["x-bay-upstream", "200"],
        ["set-cookie", "a=b"],
      ]),
    );
    expect(leaky.violations).toEqual(["a server's answer without the sandbox CSP", "a server's Set-Cookie passed"]);
    // Bay's own answer on the same route is judged as any other: a 409 it lists, an unlisted 501 it does not.
    expect(judge(contract, req, target, answer(409, error("conflict", "r"), [["x-request-id", "r"]])).violations).toEqual([]);
    expect(
      judge(contract, req, "/v1/sandboxes/sandbox-1/ports/8080", answer(409, error("conflict", "r"), [["x-request-id", "r"]])).op,
    ).toBe("portDelete");
  });

  test("error bodies: the one shape, request_id equal to the header, a code the spec names for the status", () => {
    const ok = judge(contract, request({}), "/v1/sandboxes/x", answer(404, error("not_found", "r"), [["x-request-id", "r"]]));
    expect(ok.violations).toEqual([]);
    const replayed = judge(contract, request({}), "/v1/sandboxes/x", answer(404, error("not_found", "old"), [["x-request-id", "new"]]));
    expect(replayed.violations).toEqual(["error body request_id differs from X-Request-Id"]);
    const wrongCode = judge(contract, request({}), "/v1/sandboxes/x", answer(404, error("internal_error", "r"), [["x-request-id", "r"]]));
    expect(wrongCode.violations[0]).toContain("code internal_error for status 404");
    const notModel = judge(contract, request({}), "/v1/sandboxes/x", answer(404, { message: "nope" }, [["x-request-id", "r"]]));
    expect(notModel.violations).toEqual(["error answer 404 breaks ErrorBody"]);
  });

  test("X-Request-Id: required on every answer and echoed when the caller's is valid", () => {
    const missing = judge(contract, request({}), "/v1/sandboxes/x", answer(404, error("not_found", "r")));
    expect(missing.violations).toContain("no X-Request-Id");
    const sent = request({ headers: [["X-Request-Id", "mine"]] });
    const replaced = judge(contract, sent, "/v1/sandboxes/x", answer(404, error("not_found", "other"), [["x-request-id", "other"]]));
    expect(replaced.violations).toEqual(["X-Request-Id not echoed"]);
  });

  test("5xx: 500 and 502 are findings; 503 session_not_ready with Retry-After where listed is the runtime's", () => {
    const exec = request({ aim: "execPython", method: "POST", target: "/v1/sandboxes/x/python/exec" });
    const h: Array<[string, string]> = [["x-request-id", "r"]];
    expect(judge(contract, exec, exec.target, answer(500, error("internal_error", "r"), h)).violations).toEqual(["500 internal_error"]);
    expect(judge(contract, exec, exec.target, answer(502, error("ship_error", "r"), h)).violations).toEqual([
      "502 ship_error without any runtime fault",
    ]);
    const busy = judge(contract, exec, exec.target, answer(503, error("session_not_ready", "r"), [...h, ["retry-after", "1"]]));
    expect(busy.violations).toEqual([]);
    expect(busy.serverError).toEqual({ status: 503, code: "session_not_ready", legit: true });
    const noRetry = judge(contract, exec, exec.target, answer(503, error("session_not_ready", "r"), h));
    expect(noRetry.violations).toContain("503 without Retry-After");
  });

  test("an empty answer without X-Request-Id is the HTTP server's own, grouped by kind of request", () => {
    const bare = (status: number): Outcome => ({ kind: "response", status, headers: [], body: new Uint8Array(), ms: 1 });
    const dup = request({
      transport: "raw",
      mutation: "raw dup-x-request-id",
      headers: [
        ["X-Request-Id", "a"],
        ["X-Request-Id", "b"],
      ],
    });
    const v = judge(contract, dup, dup.target, bare(400));
    expect(v.op).toBe("(HTTP server, before Bay)");
    expect(v.violations).toEqual(["bare 400 from the HTTP server: no error body, no X-Request-Id [dup-x-request-id]"]);
    // Whatever made the head big, a 431 is one finding.
    const big = request({ transport: "raw", mutation: "raw header-70k", headers: [["X-Pad", "h".repeat(70_000)]] });
    expect(judge(contract, big, big.target, bare(431)).violations).toEqual([
      "bare 431 from the HTTP server: no error body, no X-Request-Id [request head over the server's size limit]",
    ]);
  });

  test("what Bun's HTTP server answers before Bay, as the README documents, is counted apart, not a finding", () => {
    const bare = (status: number): Outcome => ({ kind: "response", status, headers: [], body: new Uint8Array(), ms: 1 });
    const closed: Outcome = { kind: "closed", status: 0, headers: [], body: new Uint8Array(), ms: 1 };
    const star = request({ transport: "raw", mutation: "raw star-target", method: "OPTIONS", target: "*" });
    const malformed = request({ transport: "raw", mutation: "raw obs-fold", syntax: "malformed" });
    const many = request({
      transport: "raw",
      mutation: "raw headers-300",
      headers: Array.from({ length: 300 }, (_, i): [string, string] => [`X-${i}`, "v"]),
    });
    const brew = request({ transport: "raw", mutation: "raw unknown-method", method: "BREW" });
    for (const [req, o] of [
      [star, bare(400)],
      [malformed, bare(400)],
      [malformed, bare(505)],
      [many, bare(431)],
      [brew, closed],
    ] as const) {
      const v = judge(contract, req, req.target, o);
      expect(v.violations).toEqual([]);
      expect(v.known).toBeTruthy();
    }
    // Not for fetch requests, nor for a bare 500, nor a malformed request answered 200.
    expect(judge(contract, request({ mutation: "valid" }), "/v1/sandboxes/sandbox-1", bare(400)).known).toBeUndefined();
    expect(judge(contract, malformed, malformed.target, bare(500)).violations).toHaveLength(1);
  });

  test("dot segments are resolved before matching an operation; a closed connection only matters for valid HTTP", () => {
    const dot = request({ transport: "raw", method: "DELETE", target: "/v1/workspaces/." });
    const v = judge(
      contract,
      dot,
      dot.target,
      answer(405, { error: { code: "method_not_allowed", message: "m", request_id: "r", details: { allowed: ["GET"] } } }, [
        ["x-request-id", "r"],
      ]),
    );
    expect(v.op).toBe("(no operation)");
    expect(v.violations).toEqual([]);
    const closed: Outcome = { kind: "closed", status: 0, headers: [], body: new Uint8Array(), ms: 1 };
    expect(judge(contract, request({ syntax: "malformed" }), "/x", closed).violations).toEqual([]);
    expect(judge(contract, request({ mutation: "raw unknown-method" }), "/x", closed).violations).toEqual([
      "connection closed without an answer [unknown-method]",
    ]);
    // An answer cut in its head by the reset after a body nothing reads (a GET to a port with 2 MiB) is Bun's doing;
    // the same cut after a body an operation takes, or with no body, is not.
    const cut: Outcome = { ...closed, detail: 'partial answer: "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain"' };
    const get = request({ transport: "raw", method: "GET", target: "/v1/sandboxes/sandbox-1", body: " ".repeat(4096) });
    expect(judge(contract, get, get.target, cut).known).toBeTruthy();
    expect(judge(contract, get, get.target, cut).violations).toEqual([]);
    const bodiless = request({ transport: "raw", method: "GET", target: "/v1/sandboxes/sandbox-1" });
    expect(judge(contract, bodiless, bodiless.target, cut).violations).toHaveLength(1);
    expect(judge(contract, get, get.target, closed).violations).toHaveLength(1);
  });
});

describe("raw HTTP answers", () => {
  const buf = (s: string) => Buffer.from(s, "latin1");
  test("by Content-Length, chunked, after an interim 100, and incomplete", () => {
    expect(parseResponse(buf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), false, false)?.body).toEqual(new Uint8Array(buf("hi")));
    const chunked = parseResponse(buf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"), false, false);
    expect(Buffer.from(chunked!.body).toString()).toBe("abc");
    const interim = parseResponse(buf("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), false, false);
    expect(interim?.status).toBe(404);
    expect(parseResponse(buf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi"), false, false)).toBeNull();
  });
  test("an event stream that is still open is answered by its head (a watch never ends by design)", () => {
    const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    expect(parseResponse(buf(head), false, false)?.status).toBe(200);
    expect(parseResponse(buf(`${head}5\r\n: hi\n`), false, false)?.status).toBe(200);
    // Without the whole head there is no answer yet.
    expect(parseResponse(buf("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"), false, false)).toBeNull();
  });
});

describe("request building", () => {
  test("escapes: absolute, `..` above the root and NUL, nothing else", () => {
    for (const p of ["/etc/passwd", "..", "../x", "a/../../b", "a\u0000b"]) expect(escapes(p)).toBe(true);
    for (const p of ["a/../b", "a//b", "./a", "..a", "é"]) expect(escapes(p)).toBe(false);
  });

  test("a lone surrogate is percent-encoded as its WTF-8 bytes instead of throwing", () => {
    expect(pctEncode("a\ud800b")).toBe("a%ED%A0%80b");
    expect(pctEncode("😀/")).toBe("%F0%9F%98%80%2F");
  });

  test("the same seed generates the same requests", () => {
    const limits = { maxBodyBytes: 1024, maxUploadBytes: 2048 };
    const run = (seed: number) => {
      const g = new RequestGenerator(contract, limits);
      const rng = new Rng(seed);
      return Array.from({ length: 100 }, (_, i) => renderRequest(g.next(rng, i)));
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  test("every operation is aimed at within a few hundred requests", () => {
    const g = new RequestGenerator(contract, { maxBodyBytes: 1024, maxUploadBytes: 2048 });
    const rng = new Rng(1);
    // envd's Connect calls (envd-rpc.ts) aim at methods of no spec: fuzz-envd-rpc.test.ts covers them.
    const aimed = new Set(
      Array.from({ length: 600 }, (_, i) => g.next(rng, i))
        .filter((r) => !r.connect)
        .map((r) => r.aim),
    );
    expect([...aimed].sort()).toEqual(contract.operations.map((o) => o.id).sort());
  });
});

describe("502 and the runtime", () => {
  test("a 502 while Docker saw the sandbox's container die is the runtime's; otherwise a finding", () => {
    const exec = request({ aim: "listDirectory", target: "/v1/sandboxes/x/filesystem/directories" });
    const lost = answer(502, error("ship_error", "r"), [["x-request-id", "r"]]);
    const explained = judge(contract, exec, exec.target, lost, "die (exit 137)");
    expect(explained.violations).toEqual([]);
    expect(explained.serverError).toEqual({ status: 502, code: "ship_error", legit: true, cause: "container die (exit 137)" });
    expect(judge(contract, exec, exec.target, lost).violations).toEqual(["502 ship_error without any runtime fault"]);
  });

  test("on a port operation, a 502 Ship marks as the server's (upstream_error) is the sandbox's server's; any other 502 there is a finding", () => {
    const ws = request({ aim: "portGet", method: "GET", target: "/v1/sandboxes/x/ports/8080/missing.txt" });
    const body = (shipCode: string) => ({
      error: { code: "ship_error", message: "m", request_id: "r", details: { reason: "bad_response", ship_code: shipCode } },
    });
    const refused = judge(contract, ws, ws.target, answer(502, body("upstream_error"), [["x-request-id", "r"]]));
    expect(refused.violations).toEqual([]);
    expect(refused.serverError).toEqual({ status: 502, code: "ship_error", legit: true, cause: "the sandbox's server" });
    expect(judge(contract, ws, ws.target, answer(502, body("internal_error"), [["x-request-id", "r"]])).violations).toEqual([
      "502 ship_error without any runtime fault",
    ]);
    // Not a port operation: Ship's word does not make it a server's.
    const exec = request({ aim: "listDirectory", target: "/v1/sandboxes/x/filesystem/directories" });
    expect(judge(contract, exec, exec.target, answer(502, body("upstream_error"), [["x-request-id", "r"]])).violations).toEqual([
      "502 ship_error without any runtime fault",
    ]);
  });
});
