/**
 * The fuzzer against the parts of main's spec its first version did not know:
 * oneOf with a discriminator (ErrorInfo), const and minItems (McpRequest),
 * responses with several media types (/docs/assets, /mcp), an enum path
 * parameter, JSON-RPC answers that must be errors, the Host guard, and the
 * generator aiming at every operation, /mcp and /metrics included.
 */
import { TRANSPORT_MAX_HEADER_BYTES } from "../../src/protocol/ship/constants.ts";
import { describe, expect, test } from "bun:test";
import { judge, operationFor, rpcMessages } from "../../scripts/fuzz/check.ts";
import { FUZZ_SANDBOX_DOMAIN } from "../../scripts/fuzz/head-strategies.ts";
import { RequestGenerator } from "../../scripts/fuzz/generate.ts";
import { validate } from "../../scripts/fuzz/json-schema.ts";
import { parseResponse } from "../../scripts/fuzz/raw-http.ts";
import type { FuzzRequest } from "../../scripts/fuzz/request.ts";
import type { Outcome } from "../../scripts/fuzz/send.ts";
import { assertContractSupported, loadContract } from "../../scripts/fuzz/spec.ts";
import { Rng } from "../../scripts/lib/rng.ts";

const contract = loadContract();
const op = (id: string) => contract.operations.find((o) => o.id === id)!;

const request = (over: Partial<FuzzRequest>): FuzzRequest => ({
  index: 0,
  aim: "postMcp",
  strategy: "valid",
  mutation: "valid",
  method: "POST",
  target: "/mcp",
  headers: [["X-Owner", "alice"]],
  transport: "fetch",
  syntax: "valid",
  timeoutMs: 1000,
  ...over,
});

const answer = (status: number, body: string, type: string, id = "r"): Outcome => ({
  kind: "response",
  status,
  headers: [
    ["content-type", type],
    ["x-request-id", id],
  ],
  body: new TextEncoder().encode(body),
  ms: 1,
});

describe("the spec as main has it", () => {
  test("every schema uses only what the validator checks; error codes come from ErrorInfo's discriminator", () => {
    expect(() => assertContractSupported(contract)).not.toThrow();
    expect(contract.errorCodes).toContain("invalid_path");
    expect(contract.errorCodes).toContain("timeout");
    expect(contract.operations.map((o) => o.id)).toEqual(
      expect.arrayContaining(["postMcp", "getMetrics", "getDocs", "getDocsAsset", "execCode", "createContext", "restartContext"]),
    );
    expect([...op("getDocsAsset").responses.get(200)!.content.keys()].sort()).toEqual(["text/css", "text/javascript"]);
  });

  test("ErrorBody: the variant is the one its code names, and its details are checked", () => {
    const body = (code: string, details: unknown) => ({ error: { code, message: "m", request_id: "r", details } });
    expect(validate(contract.errorBody, body("not_found", { kind: "sandbox", id: "x" }))).toEqual([]);
    expect(validate(contract.errorBody, body("method_not_allowed", {}))[0]).toContain('missing required "allowed"');
    expect(validate(contract.errorBody, body("not_found", { engine: "docker said…" }))[0]).toContain('unexpected property "engine"');
    expect(validate(contract.errorBody, body("teapot", {}))[0]).toContain("names no variant");
  });

  test("McpRequest: a message with jsonrpc 2.0 or a non-empty batch of them", () => {
    const schema = op("postMcp").body!.schema;
    expect(validate(schema, { jsonrpc: "2.0", id: 1, method: "ping" })).toEqual([]);
    expect(validate(schema, [{ jsonrpc: "2.0", method: "ping" }])).toEqual([]);
    expect(validate(schema, { jsonrpc: "1.0", method: "ping" })).not.toEqual([]);
    expect(validate(schema, [])).not.toEqual([]);
    expect(validate(schema, "tools/list")).not.toEqual([]);
  });
});

describe("answers with several media types", () => {
  const asset = request({ aim: "getDocsAsset", method: "GET", target: "/docs/assets/docs.js" });
  test("a success is judged by its own Content-Type, which must be one the spec lists", () => {
    expect(judge(contract, asset, asset.target, answer(200, "x()", "text/javascript; charset=utf-8")).violations).toEqual([]);
    expect(judge(contract, asset, asset.target, answer(200, "x()", "text/html")).violations).toEqual([
      "success served as text/html, not a type the spec lists",
    ]);
  });

  test("an MCP answer as JSON or as SSE, checked against McpResponse when JSON", () => {
    const rpc = request({});
    expect(judge(contract, rpc, "/mcp", answer(200, '{"jsonrpc":"2.0","id":1,"result":{}}', "application/json")).violations).toEqual([]);
    expect(judge(contract, rpc, "/mcp", answer(200, '{"id":1}', "application/json")).violations).toEqual([
      "success body breaks the response schema",
    ]);
    const sse = answer(200, 'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n', "text/event-stream");
    expect(judge(contract, rpc, "/mcp", sse).violations).toEqual([]);
  });
});

describe("a tool call on what the caller does not own", () => {
  const foreign = request({ mustFailRpc: "a tool call on a sandbox the caller does not own" });
  test("must come back as a tool error or a JSON-RPC error, as JSON or SSE", () => {
    const toolError = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"not_found: x"}],"isError":true}}';
    expect(judge(contract, foreign, "/mcp", answer(200, toolError, "application/json")).violations).toEqual([]);
    const rpcError = '{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}}';
    expect(judge(contract, foreign, "/mcp", answer(200, rpcError, "application/json")).violations).toEqual([]);
    const leaked = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"bob\'s file"}]}}';
    expect(judge(contract, foreign, "/mcp", answer(200, leaked, "application/json")).violations[0]).toContain("MCP answered a result");
    expect(judge(contract, foreign, "/mcp", answer(200, `data: ${leaked}\n\n`, "text/event-stream")).violations[0]).toContain(
      "MCP answered a result",
    );
  });

  test("rpcMessages reads batches and SSE data lines", () => {
    expect(rpcMessages(answer(200, '[{"id":1},{"id":2}]', "application/json"))).toHaveLength(2);
    expect(rpcMessages(answer(200, 'data: {"id":1}\n\ndata: {"id":2}\n\n', "text/event-stream"))).toHaveLength(2);
    expect(rpcMessages(answer(200, "not json", "application/json"))).toEqual([]);
  });
});

describe("the Host guard and what answers before any route", () => {
  test("403 forbidden is in the spec for every operation; a foreign Host that succeeds is a finding", () => {
    const foreign = request({
      aim: "listSandboxes",
      method: "GET",
      target: "/v1/sandboxes",
      transport: "raw",
      mustReject: "a Host anonymous mode does not serve",
    });
    const forbidden = answer(
      403,
      JSON.stringify({ error: { code: "forbidden", message: "m", request_id: "r", details: {} } }),
      "application/json",
    );
    expect(judge(contract, foreign, foreign.target, forbidden).violations).toEqual([]);
    const served = answer(200, '{"items":[],"next_cursor":null}', "application/json");
    expect(judge(contract, foreign, foreign.target, served).violations[0]).toContain("success for a request the spec refuses");
  });

  test("a lower-case method closed by Bun and a URL past its head limit refused by it are its documented limits", () => {
    const closed: Outcome = { kind: "closed", status: 0, headers: [], body: new Uint8Array(), ms: 1 };
    const lower = request({ transport: "raw", method: "get", target: "/metrics", mutation: "raw lowercase-method" });
    expect(judge(contract, lower, lower.target, closed)).toMatchObject({ violations: [], known: expect.any(String) });
    const huge = request({ method: "GET", target: `/v1/sandboxes/${"y".repeat(TRANSPORT_MAX_HEADER_BYTES)}` });
    const bare: Outcome = { kind: "response", status: 431, headers: [], body: new Uint8Array(), ms: 1 };
    expect(judge(contract, huge, huge.target, bare)).toMatchObject({ violations: [], known: expect.any(String) });
  });
});

describe("an answer cut mid-body", () => {
  const cut = (status: number): Outcome => ({ ...answer(status, '{"openapi":"3.1', "application/json"), cut: true });
  test("after a body nothing reads, it is Bun's close without linger; otherwise a finding", () => {
    const unread = request({ aim: "getOpenApi", method: "GET", target: "/openapi.json", transport: "raw", body: " ".repeat(100) });
    expect(judge(contract, unread, unread.target, cut(200))).toMatchObject({ violations: [], known: expect.any(String) });
    const plain = request({ aim: "getOpenApi", method: "GET", target: "/openapi.json", transport: "raw" });
    expect(judge(contract, plain, plain.target, cut(200)).violations[0]).toStartWith("answer cut short");
  });

  test("the raw reader marks a body shorter than its Content-Length or an unfinished chunked body", () => {
    const buf = (s: string) => Buffer.from(s, "latin1");
    expect(parseResponse(buf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi"), true, false)?.cut).toBe(true);
    expect(parseResponse(buf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"), true, false)?.cut).toBe(true);
    expect(parseResponse(buf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), true, false)?.cut).toBeUndefined();
  });
});

describe("the generator", () => {
  // One sequence for every test (generating is the slow part: hostile bodies reach megabytes).
  let generated: FuzzRequest[] | undefined;
  const sample = () => {
    if (!generated) {
      const g = new RequestGenerator(contract, { maxBodyBytes: 1024, maxUploadBytes: 2048 });
      const rng = new Rng(3);
      generated = Array.from({ length: 8000 }, (_, i) => g.next(rng, i));
    }
    return generated;
  };

  test("aims at /mcp with protocol messages, hostile envelopes and foreign tool calls", { timeout: 60_000 }, () => {
    // Aimed at /mcp alone: rare mutations (a foreign tool call is ~1 %) must not hang on how many operations the spec has.
    const g = new RequestGenerator(contract, { maxBodyBytes: 1024, maxUploadBytes: 2048 });
    const rng = new Rng(5);
    const mcp = Array.from({ length: 1500 }, (_, i) => g.next(rng, i, "postMcp"));
    const mutations = new Set(mcp.map((r) => r.mutation.split(" ").slice(0, 2).join(" ")));
    expect(mutations).toContain("valid");
    expect(mutations).toContain("mcp foreign");
    expect(mcp.some((r) => r.mustFailRpc !== undefined)).toBe(true);
    // An envelope the schema refuses (a jsonrpc version other than "2.0", or none) is marked as such.
    const versions = mcp.filter((r) => r.mutation.startsWith("mcp version"));
    expect(versions.length).toBeGreaterThan(0);
    for (const r of versions) expect(r.mustReject).toContain("body breaks the schema");
  });

  test("sends operations to sandbox hosts: each must be refused, and is judged as no operation of Bay's API", () => {
    const hosts = sample().filter((r) => r.mutation === "header host-sandbox");
    expect(hosts.length).toBeGreaterThan(0);
    for (const r of hosts) {
      const host = r.headers.find(([k]) => k.toLowerCase() === "host")?.[1] ?? "";
      expect(host.toLowerCase()).toEndWith(`.${FUZZ_SANDBOX_DOMAIN}`);
      expect(r.mustReject).toContain("a sandbox host without its traffic token");
      expect(operationFor(contract, r, r.target)).toBeUndefined();
    }
  });

  test("context routes aim at the running sandbox's context fixtures; a valid delete consumes the doomed one", () => {
    const ctx = sample().filter((r) => r.strategy === "valid" && r.target.includes("/contexts/"));
    expect(ctx.length).toBeGreaterThan(0);
    for (const r of ctx) {
      expect(r.target).toStartWith("/v1/sandboxes/{{sb.own}}/contexts/");
      if (r.aim === "deleteContext") expect(r.target).toContain("{{ctx.doomed}}");
    }
  });

  test("exec operations are also asked for their event stream", () => {
    const execs = sample().filter((r) => ["execPython", "execShell", "execCode"].includes(r.aim) && r.strategy === "valid");
    const accepts = new Set(execs.map((r) => r.headers.find(([k]) => k === "Accept")?.[1] ?? "none"));
    expect([...accepts].sort()).toEqual(["none", "text/event-stream"]);
  });

  test("a valid /docs/assets request names an asset of the enum; the foreign ones do not", () => {
    const assets = sample().filter((r) => r.aim === "getDocsAsset" && r.strategy === "valid");
    expect(assets.length).toBeGreaterThan(0);
    for (const r of assets) expect(["swagger-ui-bundle.js", "swagger-ui.css", "docs.js"]).toContain(r.target.split("/").pop()!);
  });

  test("/metrics relayed by a proxy must be refused; the same header elsewhere changes nothing", () => {
    const relayed = sample().filter((r) => r.mutation === "header forwarded");
    expect(relayed.length).toBeGreaterThan(0);
    for (const r of relayed) {
      if (r.aim === "getMetrics") expect(r.mustReject).toContain("relayed by a proxy");
      else expect(r.mustReject).toBeUndefined();
    }
  });

  test("a browser request from another site (Origin, Sec-Fetch-Site) must be refused everywhere", () => {
    const crossSite = sample().filter((r) => /^header (Origin|Sec-Fetch-Site) /.test(r.mutation));
    expect(crossSite.length).toBeGreaterThan(0);
    for (const r of crossSite) expect(r.mustReject).toContain("a browser request from another site");
  });

  test("sends a foreign Host over a raw socket and expects a refusal", () => {
    const hosts = sample().filter((r) => r.mutation === "header host-foreign");
    expect(hosts.length).toBeGreaterThan(0);
    for (const r of hosts) {
      expect(r.transport).toBe("raw");
      expect(r.raw?.noHost).toBe(true);
      expect(r.mustReject).toContain("a Host anonymous mode does not serve");
    }
  });
});
