/**
 * Bodies for POST /mcp. The spec only says "one JSON-RPC 2.0 message or a
 * non-empty batch", so valid messages come from the protocol (initialize,
 * tools/list, tools/call of Bay's tools on the fixtures, notifications) and
 * hostile ones break the envelope (version, id, method, params, batches) or
 * aim a tool at what the caller does not own. A tool call on another owner's
 * sandbox must come back as a tool error (`mustFailRpc`), never as a result.
 * No message creates or deletes a sandbox: the fixture keeper would not see it.
 */
import type { Rng } from "../lib/rng.ts";
import { HOSTILE_PATHS, HOSTILE_STRINGS } from "./corpus.ts";
import type { Draft } from "./draft.ts";

type Message = Record<string, unknown>;

const rpc = (rng: Rng, method: string, params?: unknown): Message => ({
  jsonrpc: "2.0",
  id: rng.int(1, 1_000_000),
  method,
  ...(params !== undefined ? { params } : {}),
});

const callTool = (rng: Rng, name: string, args: Record<string, unknown>) => rpc(rng, "tools/call", { name, arguments: args });

/** Tool calls that are valid for the caller's own sandbox `sb`. */
function validToolCall(rng: Rng, sb: string): Message {
  return rng.pick([
    () => callTool(rng, "list_profiles", {}),
    () => callTool(rng, "list_sandboxes", rng.chance(0.5) ? { status: "idle" } : {}),
    () => callTool(rng, "run_python", { sandbox_id: sb, code: rng.pick(["1+1", "print('mcp')"]) }),
    () => callTool(rng, "run_shell", { sandbox_id: sb, command: "echo mcp" }),
    () => callTool(rng, "read_file", { sandbox_id: sb, path: "fuzz/hello.txt" }),
    () => callTool(rng, "write_file", { sandbox_id: sb, path: "fuzz/mcp.txt", content: "from mcp\n" }),
    () => callTool(rng, "list_files", { sandbox_id: sb, path: "fuzz" }),
  ])();
}

/** A valid JSON-RPC message (or batch) for Bay's MCP server. */
export function validMcpMessage(rng: Rng): unknown {
  const kind = rng.weighted({ initialize: 2, list: 2, call: 5, notification: 1, ping: 1, batch: 1 });
  switch (kind) {
    case "initialize":
      return rpc(rng, "initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "fuzz", version: "0" } });
    case "list":
      return rpc(rng, "tools/list", {});
    case "call":
      return validToolCall(rng, rng.pick(["{{sb.own}}", "{{sb.own}}", "{{sb.idle}}"]));
    case "notification":
      return { jsonrpc: "2.0", method: "notifications/initialized" };
    case "ping":
      return rpc(rng, "ping");
    default:
      return [rpc(rng, "tools/list", {}), validToolCall(rng, "{{sb.own}}")];
  }
}

/**
 * Changes the draft's JSON-RPC message into a hostile one. Envelope breakage
 * is judged by the body schema afterwards (the generator's `judgeJson`);
 * owner violations set `mustFailRpc`.
 */
export function mcpMutation(rng: Rng, d: Draft): void {
  const [tag, make] = rng.pick(HOSTILE_MESSAGES);
  const [name, msg] = make(rng);
  d.json = msg;
  d.mutation = `mcp ${name ?? tag}`;
  if (tag === "foreign sandbox") d.mustFailRpc = "a tool call on a sandbox the caller does not own";
}

type Make = (rng: Rng) => [string | undefined, unknown];
const fixed =
  (value: (rng: Rng) => unknown): Make =>
  (rng) => [undefined, value(rng)];

/** Hostile messages by kind; each is built only when picked (some are large). */
const HOSTILE_MESSAGES: ReadonlyArray<readonly [string, Make]> = [
  ["version 1.0", fixed((rng) => ({ ...rpc(rng, "tools/list", {}), jsonrpc: "1.0" }))],
  ["version missing", fixed(() => ({ id: 1, method: "tools/list" }))],
  ["version as number", fixed(() => ({ jsonrpc: 2, id: 1, method: "tools/list" }))],
  ["empty batch", fixed(() => [])],
  ["batch of 1000", fixed(() => Array.from({ length: 1000 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "ping" })))],
  ["batch of non-objects", fixed(() => [1, "x", null])],
  ["null message", fixed(() => null)],
  ["string message", fixed(() => "tools/list")],
  ["id object", fixed(() => ({ jsonrpc: "2.0", id: { a: 1 }, method: "ping" }))],
  ["id huge", fixed(() => ({ jsonrpc: "2.0", id: "i".repeat(100_000), method: "ping" }))],
  ["id null", fixed(() => ({ jsonrpc: "2.0", id: null, method: "ping" }))],
  ["method unknown", fixed((rng) => rpc(rng, "no/such/method"))],
  [
    "method hostile",
    (rng) => {
      const [t, s] = rng.pick(HOSTILE_STRINGS);
      return [`method ${t}`, rpc(rng, s)];
    },
  ],
  ["method number", fixed(() => ({ jsonrpc: "2.0", id: 1, method: 7 }))],
  ["params array", fixed((rng) => rpc(rng, "tools/call", ["run_shell"]))],
  ["params deep", fixed((rng) => rpc(rng, "tools/list", JSON.parse(`${"[".repeat(2000)}${"]".repeat(2000)}`)))],
  ["tool unknown", fixed((rng) => callTool(rng, "no_such_tool", {}))],
  ["tool without arguments", fixed((rng) => rpc(rng, "tools/call", { name: "run_python" }))],
  ["tool argument wrong type", fixed((rng) => callTool(rng, "run_python", { sandbox_id: "{{sb.own}}", code: 1 }))],
  ["tool code empty", fixed((rng) => callTool(rng, "run_python", { sandbox_id: "{{sb.own}}", code: "" }))],
  [
    "tool path",
    (rng) => {
      const [t, p] = rng.pick(HOSTILE_PATHS);
      return [`tool path ${t}`, callTool(rng, "read_file", { sandbox_id: "{{sb.own}}", path: p })];
    },
  ],
  [
    "tool sandbox_id",
    (rng) => {
      const [t, s] = rng.pick(HOSTILE_STRINGS);
      return [`tool sandbox_id ${t}`, callTool(rng, "list_files", { sandbox_id: s })];
    },
  ],
  ["a response, not a request", fixed(() => ({ jsonrpc: "2.0", id: 5, result: {} }))],
  ["an error response", fixed(() => ({ jsonrpc: "2.0", id: 5, error: { code: -1, message: "x" } }))],
  [
    "foreign sandbox",
    (rng) => {
      const sb = rng.pick(["{{sb.other}}", "{{sb.gone}}", "{{sb.unknown}}"]);
      const [tool, args] = rng.pick([
        ["run_shell", { command: "echo no" }],
        ["read_file", { path: "fuzz/hello.txt" }],
        ["list_files", { path: "." }],
        ["delete_sandbox", {}],
      ] as const);
      return [`foreign sandbox ${sb} ${tool}`, callTool(rng, tool, { sandbox_id: sb, ...args })];
    },
  ],
];
