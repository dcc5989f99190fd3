/**
 * The fuzzer's coverage of the E2B-compatible API (scripts/fuzz/e2b.ts,
 * apis.ts, ndjson.ts and their use in spec.ts, check.ts and the generator):
 * both specs in one contract, E2B's error body and statuses judged like Bay's,
 * the code interpreter's NDJSON, and requests that carry the data plane's
 * credentials or get them wrong.
 */
import { describe, expect, test } from "bun:test";
import { modelForPath } from "../../scripts/fuzz/apis.ts";
import { judge, operationFor } from "../../scripts/fuzz/check.ts";
import { e2bEscapes, e2bSandboxOf } from "../../scripts/fuzz/e2b.ts";
import { RequestGenerator } from "../../scripts/fuzz/generate.ts";
import { checkNdjson } from "../../scripts/fuzz/ndjson.ts";
import { type FuzzRequest, makeResolver } from "../../scripts/fuzz/request.ts";
import type { Outcome } from "../../scripts/fuzz/send.ts";
import { assertContractSupported, E2B_SPEC_FILE, loadContract, loadContracts } from "../../scripts/fuzz/spec.ts";
import { Rng } from "../../scripts/lib/rng.ts";

const contract = loadContracts();
const e2bOps = contract.operations.filter((o) => o.api.name === "e2b");

const request = (aim: string, method: string, target: string, extra: Partial<FuzzRequest> = {}): FuzzRequest => ({
  index: 0,
  aim,
  api: "e2b",
  strategy: "valid",
  mutation: "valid",
  method,
  target,
  headers: [],
  transport: "fetch",
  syntax: "valid",
  timeoutMs: 1000,
  ...extra,
});
const answer = (status: number, body: unknown, type = "application/json"): Outcome => ({
  kind: "response",
  status,
  headers: [
    ["content-type", type],
    ["x-request-id", "r"],
  ],
  body: new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body)),
  ms: 1,
});
const getSandbox = request("e2bGetSandbox", "GET", "/e2b/sandboxes/sandbox-1");

describe("the E2B contract", () => {
  test("all 23 operations load under the spec's server path, with E2B's error body; both specs make one contract", () => {
    const alone = loadContract(E2B_SPEC_FILE);
    expect(alone.operations).toHaveLength(23);
    expect(e2bOps).toHaveLength(23);
    expect(contract.operations.length).toBe(loadContract().operations.length + 23);
    expect(e2bOps.every((o) => o.path.startsWith("/e2b/"))).toBe(true);
    expect(contract.apis.map((a) => [a.name, a.base])).toEqual([
      ["bay", ""],
      ["e2b", "/e2b"],
    ]);
    expect(() => assertContractSupported(contract)).not.toThrow();
    // The control plane takes an owner's credentials; envd's routes and the interpreter a sandbox's token.
    const authenticated = (id: string) => e2bOps.find((o) => o.id === id)!.authenticated;
    expect([authenticated("e2bCreateSandbox"), authenticated("e2bReadFile"), authenticated("e2bExecute")]).toEqual([true, false, false]);
    expect(e2bOps.find((o) => o.id === "e2bExecute")!.responses.get(200)!.ndjson).toBe(true);
    expect(operationFor(contract, getSandbox, "/e2b/sandboxes/sandbox-1")?.id).toBe("e2bGetSandbox");
    // Slashes right after the base count as one, as Bay routes them (SDKs with a base URL ending in `/`).
    expect(operationFor(contract, getSandbox, "/e2b///sandboxes/sandbox-1")?.id).toBe("e2bGetSandbox");
    expect(operationFor(contract, getSandbox, "/e2b/sandboxes//sandbox-1")).toBeUndefined();
  });

  test("an answer with no operation is judged by the error model of the API whose base its path lies under", () => {
    expect(modelForPath(contract.apis, "/e2b/volumes").name).toBe("e2b");
    expect(modelForPath(contract.apis, "/e2b").name).toBe("e2b");
    expect(modelForPath(contract.apis, "/e2bx").name).toBe("bay");
    expect(modelForPath(contract.apis, "/v1/nothing").name).toBe("bay");
    // E2B's /files is also served at the origin root (the SDKs' signed URLs): its operations and error body.
    expect(modelForPath(contract.apis, "/files").name).toBe("e2b");
    expect(modelForPath(contract.apis, "/files/x").name).toBe("bay");
    const atRoot = request("e2bReadFile", "GET", "/files?path=x");
    expect(operationFor(contract, atRoot, "/files?path=x")?.id).toBe("e2bReadFile");
    const unrouted = request("e2bGetSandbox", "GET", "/e2b/volumes");
    expect(judge(contract, unrouted, "/e2b/volumes", answer(404, { code: 404, message: "no E2B route" })).violations).toEqual([]);
    const bayBody = { error: { code: "not_found", message: "m", request_id: "r", details: {} } };
    expect(judge(contract, unrouted, "/e2b/volumes", answer(404, bayBody)).violations).toContain(
      "error answer 404 breaks E2B's error body",
    );
  });
});

describe("judging E2B answers", () => {
  test("an error in E2B's shape with its status passes; Bay's shape, a code that is not the status, an undeclared status do not", () => {
    expect(judge(contract, getSandbox, getSandbox.target, answer(404, { code: 404, message: "sandbox not found" })).violations).toEqual([]);
    const bayShape = judge(contract, getSandbox, getSandbox.target, answer(404, { error: { code: "not_found", message: "m" } }));
    expect(bayShape.violations).toContain("error answer 404 breaks E2B's error body");
    const wrongCode = judge(contract, getSandbox, getSandbox.target, answer(404, { code: 400, message: "m" }));
    expect(wrongCode.violations).toEqual(["error body code differs from the HTTP status"]);
    // e2bGetSandbox declares no 409.
    const undeclared = judge(contract, getSandbox, getSandbox.target, answer(409, { code: 409, message: "m" }));
    expect(undeclared.violations).toEqual(["status 409 not in the spec for this operation"]);
    const notJson = judge(contract, getSandbox, getSandbox.target, answer(404, "oops", "text/plain"));
    expect(notJson.violations[0]).toStartWith("error answer 404 without the error body");
  });

  test("a success body is checked against the response schema", () => {
    const tmpl = request("e2bGetTemplateAlias", "GET", "/e2b/templates/aliases/base");
    expect(judge(contract, tmpl, tmpl.target, answer(200, { templateID: "base", public: true })).violations).toEqual([]);
    expect(judge(contract, tmpl, tmpl.target, answer(200, { templateID: "base" })).violations).toEqual([
      "success body breaks the response schema",
    ]);
  });

  test("5xx: a 500 is a bug; a 502 needs a runtime fault, except envd's health of a sandbox not running; 501 where the spec says so", () => {
    const create = request("e2bCreateSandbox", "POST", "/e2b/v2/sandboxes");
    const v500 = judge(contract, create, create.target, answer(500, { code: 500, message: "internal error" }));
    expect(v500.violations).toContain("500 internal_error");
    expect(v500.serverError?.legit).toBe(false);
    const read = request("e2bReadFile", "GET", "/e2b/files?path=x");
    const bad = answer(502, { code: 502, message: "ship" });
    expect(judge(contract, read, read.target, bad).violations).toEqual(["502 ship_error without any runtime fault"]);
    expect(judge(contract, read, read.target, bad, "die (exit 137)").serverError).toMatchObject({ legit: true });
    const health = request("e2bHealth", "GET", "/e2b/health", { mustReject: "a killed sandbox" });
    expect(judge(contract, health, health.target, bad)).toMatchObject({ violations: [], serverError: { legit: true } });
    const liveHealth = request("e2bHealth", "GET", "/e2b/health");
    expect(judge(contract, liveHealth, liveHealth.target, bad).violations).toEqual(["502 ship_error without any runtime fault"]);
    const pause = request("e2bPauseSandbox", "POST", "/e2b/sandboxes/sandbox-1/pause");
    expect(judge(contract, pause, pause.target, answer(501, { code: 501, message: "cannot pause" })).violations).toEqual([]);
    const contexts = request("e2bListContexts", "GET", "/e2b/contexts");
    expect(judge(contract, contexts, contexts.target, answer(501, { code: 501, message: "m" })).violations).toEqual([
      "501 not_implemented not explained by the runtime",
    ]);
  });

  test("/execute: its NDJSON must end with end_of_execution; a cut run is a finding without a runtime fault", () => {
    const exec = request("e2bExecute", "POST", "/e2b/execute");
    const ts = "2026-01-01T00:00:00Z";
    const good = [
      { type: "stdout", text: "a\n", timestamp: ts },
      { type: "result", is_main_result: true, text: "2" },
      { type: "number_of_executions", execution_count: 1 },
      { type: "end_of_execution" },
    ];
    const ndjson = (lines: unknown[]) => answer(200, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`, "application/x-ndjson");
    expect(judge(contract, exec, exec.target, ndjson(good)).violations).toEqual([]);
    expect(judge(contract, exec, exec.target, ndjson(good.slice(0, 3))).violations).toEqual([
      "NDJSON answer that does not end with end_of_execution",
    ]);
    const cut = [{ type: "error", name: "ExecutionError", value: "the execution's stream ended early", traceback: "" }, good[3]];
    expect(judge(contract, exec, exec.target, ndjson(cut)).violations).toEqual(["stream ended with ship_error without any runtime fault"]);
    expect(judge(contract, exec, exec.target, ndjson(cut), "die (exit 137)").violations).toEqual([]);
    expect(judge(contract, exec, exec.target, answer(200, good, "application/json")).violations).toEqual([
      "success served as application/json, not a type the spec lists",
    ]);
  });

  test("checkNdjson names what each kind of line lacks", () => {
    expect(checkNdjson('{"type":"stdout","text":"a"}\n{"type":"end_of_execution"}\n').violations).toEqual([
      "NDJSON stdout line without a timestamp",
    ]);
    expect(checkNdjson('{"type":"end_of_execution"}\n{"type":"end_of_execution"}\n').violations).toEqual([
      "NDJSON end_of_execution before the last line",
    ]);
    expect(checkNdjson('nope\n{"type":"end_of_execution"}').violations).toEqual([
      "NDJSON answer whose last line has no newline",
      'NDJSON line that is not JSON: "nope"',
    ]);
    expect(checkNdjson('{"type":"weird"}\n{"type":"end_of_execution"}\n').violations).toEqual(['NDJSON line of unknown type "weird"']);
    // E2B's keepalive while a run is silent, and only its type.
    expect(checkNdjson('{"type":"keepalive"}\n{"type":"keepalive"}\n{"type":"end_of_execution"}\n').violations).toEqual([]);
    expect(checkNdjson('{"type":"keepalive","text":"x"}\n{"type":"end_of_execution"}\n').violations).toEqual([
      "NDJSON keepalive line with more than its type",
    ]);
  });
});

describe("generating E2B requests", () => {
  const generator = new RequestGenerator(contract, { maxBodyBytes: 1024, maxUploadBytes: 2048 });
  const many = (id: string, n = 300) => {
    const rng = new Rng(5);
    return Array.from({ length: n }, (_, i) => generator.next(rng, i, id));
  };
  const header = (r: FuzzRequest, name: string) => r.headers.find(([k]) => k.toLowerCase() === name)?.[1];

  test("valid data-plane requests carry the live sandbox's id and token; control-plane ids are E2B fixtures", () => {
    for (const r of many("e2bExecute").filter((r) => r.strategy === "valid")) {
      expect(header(r, "e2b-sandbox-id")).toBe("{{esb.own}}");
      expect(header(r, "x-access-token")).toBe("{{etok.own}}");
      expect(r.mustReject).toBeUndefined();
    }
    // A valid run names a context or a language, never both (E2B refuses both).
    const runs = many("e2bExecute", 600)
      .filter((r) => r.strategy === "valid" && typeof r.body === "string")
      .map((r) => JSON.parse(r.body as string) as { context_id?: unknown; language?: unknown });
    expect(runs.some((b) => b.context_id)).toBe(true);
    expect(runs.some((b) => b.language)).toBe(true);
    expect(runs.filter((b) => b.context_id && b.language)).toEqual([]);
    const kills = many("e2bKillSandbox").filter((r) => r.strategy === "valid");
    expect(kills.length).toBeGreaterThan(0);
    for (const r of kills) expect(r.target).toBe("/e2b/sandboxes/{{esb.doomed}}");
    for (const r of many("e2bGetSandbox").filter((r) => r.strategy === "pathParam"))
      expect(r.mustReject).toBe("sandboxID names nothing the caller owns");
  });

  test("wrong credentials must be refused: no or forged token, a killed sandbox, root, a bad signed URL; a valid signed URL need not", () => {
    const access = many("e2bReadFile", 600).filter((r) => r.strategy === "e2bAccess");
    const by = (m: string) => access.filter((r) => r.mutation === m);
    for (const m of ["E2B access noToken", "E2B access forged", "E2B access gone", "E2B access root", "E2B signed URL expired"]) {
      expect(by(m).length).toBeGreaterThan(0);
      for (const r of by(m)) expect(r.mustReject).toBeDefined();
    }
    // Valid signed URLs go under the prefix and at the origin root, as the SDKs build them.
    for (const [m, target] of [
      ["E2B signed URL valid", "/e2b/files?{{esig.read}}"],
      ["E2B signed URL valid at the root", "/files?{{esig.read}}"],
    ] as const) {
      expect(by(m).length).toBeGreaterThan(0);
      for (const r of by(m)) {
        expect(r.target).toBe(target);
        expect(r.mustReject).toBeUndefined();
        expect(header(r, "x-access-token")).toBeUndefined();
      }
    }
    expect(by("E2B signed URL expired at the root").every((r) => r.mustReject !== undefined)).toBe(true);
    for (const r of by("E2B access tokenOnly")) expect(r.mustReject).toBeUndefined();
    // The traffic token opens the interpreter, not envd's files.
    for (const r of by("E2B access traffic")) expect(r.mustReject).toBe("the traffic token outside the code interpreter");
    for (const r of many("e2bExecute").filter((r) => r.mutation === "E2B access traffic")) expect(r.mustReject).toBeUndefined();
    // GET /health naming no sandbox is the API's own health (200 to anyone): a refused traffic token names the sandbox.
    const health = many("e2bHealth", 600).filter((r) => r.mutation === "E2B access traffic");
    expect(health.length).toBeGreaterThan(0);
    for (const r of health)
      expect([r.mustReject, header(r, "e2b-sandbox-id")]).toEqual(["the traffic token outside the code interpreter", "{{esb.own}}"]);
  });

  test("POST /files as a multipart form: parts named by their path; forms Bay must refuse are marked", () => {
    const forms = many("e2bWriteFiles", 600).filter((r) => r.strategy === "e2bMultipart");
    const by = (m: string) => forms.filter((r) => r.mutation === m);
    for (const r of forms) expect(header(r, "content-type")).toStartWith("multipart/form-data; boundary=fzb");
    for (const m of ["E2B multipart one", "E2B multipart two", "E2B multipart toPath"]) {
      expect(by(m).length).toBeGreaterThan(0);
      for (const r of by(m)) expect(r.mustReject).toBeUndefined();
    }
    for (const r of by("E2B multipart one")) expect(r.target).not.toContain("path=");
    for (const m of ["E2B multipart twoToPath", "E2B multipart noFile", "E2B multipart unterminated"]) {
      expect(by(m).length).toBeGreaterThan(0);
      for (const r of by(m)) expect(r.mustReject).toBeDefined();
    }
    const named = forms.filter((r) => r.mutation.startsWith("E2B multipart part named"));
    expect(named.some((r) => r.mustReject === "a part's name leaves the sandbox's files")).toBe(true);
    for (const r of named.filter((r) => / (escape|deep-escape|absolute|outside|home-prefix)$/.test(r.mutation)))
      expect(r.mustReject).toBe("a part's name leaves the sandbox's files");
    for (const r of named.filter((r) => / (dotfile|emoji|binary-file|dot-dot-inside)$/.test(r.mutation)))
      expect(r.mustReject).toBeUndefined();
  });

  test("E2B paths: absolute under the home or /workspace, ~/ or relative; anything else escapes", () => {
    for (const p of ["/home/user/fuzz/a", "/home/user", "~/a", "fuzz/a", "/workspace/x"]) expect(e2bEscapes(p)).toBe(false);
    for (const p of ["/etc/passwd", "/home/userx", "../x", "/home/user/../../etc", "~/../x", "a\u0000b"]) expect(e2bEscapes(p)).toBe(true);
  });

  test("the sandbox a request touches: by the control plane's path, E2b-Sandbox-Id or the token's sandbox", () => {
    const resolve = makeResolver({ "esb.own": "sandbox-own", "etok.own": "ea_sandbox-tok_abc_def" });
    const r = (headers: Array<[string, string]>, target = "/e2b/execute") =>
      e2bSandboxOf(request("e2bExecute", "POST", target, { headers }), target, resolve);
    expect(r([], "/e2b/v2/sandboxes/sandbox-x/connect")).toBe("sandbox-x");
    expect(r([["E2b-Sandbox-Id", "{{esb.own}}"]])).toBe("sandbox-own");
    expect(r([["X-Access-Token", "{{etok.own}}"]])).toBe("sandbox-tok");
    expect(r([], "/v1/sandboxes/sandbox-y")).toBeUndefined();
  });
});
