/**
 * POST /mcp without containers: the protocol (initialize, tools/list, a
 * notification, JSON or SSE answers), the /v1 auth and owner scoping applied
 * to tools (another owner's sandbox is not found), path rules before any
 * container, errors in Bay's body for transport-level failures, and the inner
 * /v1 calls logged under the MCP request's id.
 */
import { afterAnswersRan } from "../../src/bay/observability/after-answer.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { createLogger } from "../../src/bay/logger.ts";
import { createTestBay, type TestBay } from "../support/harness.ts";
import { closeWithoutContainers, expectErrorBody } from "./support/fixtures.ts";

const ALICE = "alice-mcp-key-0123456789abcdef";
const BOB = "bob-mcp-key-0123456789abcdef";
const lines: string[] = [];
let t: TestBay;
let nextId = 1;

beforeAll(async () => {
  t = await createTestBay({
    logger: createLogger("info", (l) => lines.push(l)),
    config: {
      auth: {
        mode: "api_key",
        api_keys: [
          { key: ALICE, owner: "alice" },
          { key: BOB, owner: "bob" },
        ],
      },
    },
  });
});
afterAll(() => closeWithoutContainers(t));

interface Rpc {
  status: number;
  res: Response;
  body: any;
}

async function post(token: string | null, message: unknown, headers: Record<string, string> = {}): Promise<Rpc> {
  const res = await t.bay.app.request("/mcp", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: typeof message === "string" ? message : JSON.stringify(message),
  });
  const text = await res.clone().text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, res, body };
}

const call = (token: string, method: string, params: unknown = {}) => post(token, { jsonrpc: "2.0", id: nextId++, method, params });
const tool = async (token: string, name: string, args: Record<string, unknown>) => {
  const r = await call(token, "tools/call", { name, arguments: args });
  expect(r.status).toBe(200);
  return r.body.result as { content: Array<{ type: string; text?: string }>; isError?: boolean };
};
const textOf = (r: { content: Array<{ text?: string }> }) => r.content.map((c) => c.text ?? "").join("\n");

describe("protocol", () => {
  test("initialize answers JSON to a JSON-only client, with Bay's server info", async () => {
    const r = await call(ALICE, "initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } });
    expect(r.status).toBe(200);
    expect(r.res.headers.get("content-type")).toContain("application/json");
    expect(r.res.headers.get("x-request-id")).toBeTruthy();
    expect(r.body.result.serverInfo.name).toBe("bay");
    expect(r.body.result.capabilities.tools).toBeDefined();
    expect(r.body.result.instructions).toContain("create_sandbox");
  });

  test("a client that accepts SSE gets the answer as an event stream", async () => {
    const r = await post(
      ALICE,
      { jsonrpc: "2.0", id: nextId++, method: "tools/list", params: {} },
      { accept: "application/json, text/event-stream" },
    );
    expect(r.status).toBe(200);
    expect(r.res.headers.get("content-type")).toContain("text/event-stream");
    expect(String(r.body)).toContain("event: message");
    expect(String(r.body)).toContain('"run_python"');
  });

  test("tools/list names the sandbox, code and file tools, each with an input schema", async () => {
    const r = await call(ALICE, "tools/list");
    const tools = r.body.result.tools as Array<{ name: string; inputSchema: { type: string } }>;
    expect(tools.map((x) => x.name).sort()).toEqual(
      [
        "create_context",
        "create_sandbox",
        "delete_context",
        "delete_sandbox",
        "http_request",
        "list_contexts",
        "list_files",
        "list_profiles",
        "list_sandboxes",
        "read_file",
        "run_code",
        "run_python",
        "run_shell",
        "write_file",
      ].sort(),
    );
    for (const x of tools) expect(x.inputSchema.type).toBe("object");
  });

  test("the code tools take what the REST routes take: their limits are the spec's, a defaulted field has no default here", async () => {
    const spec = parse(await Bun.file("openapi/bay.v1.yaml").text());
    const props = (name: string) => spec.components.schemas[name].properties;
    const exec = props("CodeExecRequest");
    const shell = props("ShellExecRequest");
    const r = await call(ALICE, "tools/list");
    const tools = new Map<string, any>((r.body.result.tools as any[]).map((x) => [x.name, x.inputSchema.properties]));
    for (const name of ["run_python", "run_code", "run_shell"]) {
      const timeout = tools.get(name).timeout;
      expect([name, timeout.minimum, timeout.maximum, timeout.default]).toEqual([
        name,
        exec.timeout.minimum,
        exec.timeout.maximum,
        undefined,
      ]);
    }
    expect(tools.get("run_python").code.maxLength).toBe(exec.code.maxLength);
    expect(tools.get("run_code").code.maxLength).toBe(exec.code.maxLength);
    expect(tools.get("run_shell").command.maxLength).toBe(shell.command.maxLength);
    expect(tools.get("run_shell").cwd.maxLength).toBe(shell.cwd.maxLength);
    expect(tools.get("run_code").language.enum).toEqual(spec.components.schemas.Language.enum);
  });

  test("a notification is accepted with 202 and no body", async () => {
    const r = await post(ALICE, { jsonrpc: "2.0", method: "notifications/initialized" });
    expect(r.status).toBe(202);
    expect(r.body).toBeNull();
  });

  test("an unknown method is a JSON-RPC error, not an HTTP one", async () => {
    const r = await call(ALICE, "no/such/method");
    expect(r.status).toBe(200);
    expect(r.body.error.code).toBe(-32601);
  });
});

describe("transport errors answer Bay's error body", () => {
  test("no or bad credentials: 401", async () => {
    for (const token of [null, "not-a-key-0000000000000000"]) {
      const r = await post(token, { jsonrpc: "2.0", id: 1, method: "tools/list" });
      expect(r.status).toBe(401);
      expectErrorBody(r.res, r.body, "unauthorized");
    }
  });

  test("malformed JSON, a non-JSON-RPC body, a non-JSON content type: 400", async () => {
    for (const [body, headers] of [
      ['{"jsonrpc":', {}],
      [[1, 2, 3], {}],
      [{ id: 1, method: "tools/list" }, {}],
      [{ jsonrpc: "2.0", id: 1, method: "tools/list" }, { "content-type": "text/plain" }],
    ] as Array<[unknown, Record<string, string>]>) {
      const r = await post(ALICE, body, headers);
      expect(r.status).toBe(400);
      expectErrorBody(r.res, r.body, "validation_error");
    }
  });

  test("a message the MCP transport itself refuses (params not an object, a method that is not a string) is Bay's 400, not the SDK's body", async () => {
    for (const body of [
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: ["run_shell"] },
      { jsonrpc: "2.0", id: 1, method: 7 },
    ]) {
      const r = await post(ALICE, body, { "x-request-id": "mcp-refused-1" });
      expect(r.status).toBe(400);
      expectErrorBody(r.res, r.body, "validation_error");
      expect(r.body.error.request_id).toBe("mcp-refused-1");
    }
  });

  test("GET and DELETE /mcp are 405 (no server-initiated streams or sessions in stateless mode)", async () => {
    for (const method of ["GET", "DELETE"]) {
      const res = await t.bay.app.request("/mcp", { method, headers: { authorization: `Bearer ${ALICE}` } });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
    }
  });
});

describe("tools act as the caller, through /v1", () => {
  test("create and list are the caller's own; another owner's sandbox is not found", async () => {
    const created = await tool(ALICE, "create_sandbox", { ttl: 600 });
    expect(created.isError).toBeUndefined();
    const id = JSON.parse(textOf(created)).id as string;
    expect(id).toStartWith("sandbox-");
    expect(JSON.parse(textOf(await tool(ALICE, "list_sandboxes", {}))).items.map((s: { id: string }) => s.id)).toContain(id);
    expect(JSON.parse(textOf(await tool(BOB, "list_sandboxes", {}))).items).toEqual([]);

    for (const [name, args] of [
      ["delete_sandbox", { sandbox_id: id }],
      ["read_file", { sandbox_id: id, path: "a.txt" }],
      ["run_shell", { sandbox_id: id, command: "id" }],
    ] as const) {
      const r = await tool(BOB, name, args);
      expect(r.isError).toBe(true);
      expect(textOf(r)).toStartWith("not_found:");
    }
    // Still alice's, untouched.
    expect((await t.json("GET", `/v1/sandboxes/${id}`, { headers: { authorization: `Bearer ${ALICE}` } })).status).toBe(200);
    expect(textOf(await tool(ALICE, "delete_sandbox", { sandbox_id: id }))).toBe(`deleted ${id}`);
  });

  test("path rules apply before any container starts", async () => {
    const id = JSON.parse(textOf(await tool(ALICE, "create_sandbox", {}))).id as string;
    const r = await tool(ALICE, "write_file", { sandbox_id: id, path: "../escape.txt", content: "x" });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toStartWith("invalid_path:");
    expect((await t.json("GET", `/v1/sandboxes/${id}`, { headers: { authorization: `Bearer ${ALICE}` } })).body.status).toBe("idle");
  });

  test("arguments are checked by the tool's schema", async () => {
    const r = await tool(ALICE, "run_python", { sandbox_id: "sandbox-x" });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("Invalid arguments for tool run_python");
  });

  test("ids that are not one clean path segment are refused by the schema, before any /v1 call", async () => {
    lines.length = 0;
    for (const bad of [".", "..", "a/b", "%2e%2e", "sandbox x", "sandbox-\u0000", "ü"]) {
      for (const [name, args] of [
        ["run_python", { sandbox_id: bad, code: "1" }],
        ["list_contexts", { sandbox_id: bad }],
        ["delete_context", { sandbox_id: "sandbox-x", context_id: bad }],
      ] as const) {
        const r = await tool(ALICE, name, args);
        expect(r.isError).toBe(true);
        expect(textOf(r)).toContain(`Invalid arguments for tool ${name}`);
      }
    }
    // Nothing reached /v1: the MCP calls' own access lines only (written after each answer).
    await afterAnswersRan();
    const paths = lines
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === "request")
      .map((l) => l.route);
    expect(paths.length).toBeGreaterThan(0);
    expect([...new Set(paths)]).toEqual(["/mcp"]);
  });

  test("the inner /v1 calls are logged with the MCP request's id, marked internal", async () => {
    lines.length = 0;
    await post(
      ALICE,
      { jsonrpc: "2.0", id: 99, method: "tools/call", params: { name: "list_profiles", arguments: {} } },
      { "x-request-id": "req-mcp" },
    );
    await afterAnswersRan();
    const access = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
    expect(access).toEqual([
      expect.objectContaining({ route: "/v1/profiles", status: 200, owner: "alice", request_id: "req-mcp", internal: true }),
      expect.objectContaining({ route: "/mcp", status: 200, owner: "alice", request_id: "req-mcp" }),
    ]);
    expect(access[1]).not.toHaveProperty("internal");
    expect(lines.join("\n")).not.toContain(ALICE);
  });
});
