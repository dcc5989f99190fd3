/**
 * `bay mcp --url URL [--token TOKEN]`: a stdio MCP server for desktop agents
 * that forwards every JSON-RPC message, unchanged, to a Bay's POST /mcp and
 * every answer back. stdout carries only protocol messages; diagnostics go to
 * stderr. The token is better given as BAY_TOKEN than on the command line,
 * where other users of the machine can read it.
 */
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { errorMessage } from "../logger.ts";
import { allowOnly, type CliIo, flag, parseArgs, redactUrl } from "./args.ts";
import { clientTarget, endpoint } from "./client.ts";
import { AnswerLedger, ledgerFetch } from "./mcp-answers.ts";

export const MCP_USAGE = `usage: bay mcp [--url URL] [--token TOKEN] [--owner NAME]

Serves MCP over stdio and relays it to a Bay's POST /mcp. Point a desktop agent at
\`bay mcp\` as its command. URL defaults to BAY_URL or http://127.0.0.1:8000; the
token to BAY_TOKEN (an API key or JWT); --owner sets X-Owner for a Bay in anonymous mode.`;

/** JSON-RPC "server error" range: the relay could not deliver the request. */
const RELAY_FAILED = -32000;

export async function runMcp(argv: string[], io: CliIo): Promise<number> {
  let target: ReturnType<typeof clientTarget>;
  try {
    const args = parseArgs(argv, { values: ["url", "token", "owner"] });
    if (args.flags.has("help")) {
      io.out(MCP_USAGE);
      return 0;
    }
    allowOnly(args, ["url", "token", "owner"], 0);
    target = clientTarget(io.env, flag(args, "url"), flag(args, "token"), flag(args, "owner"));
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${MCP_USAGE}`);
    return 2;
  }
  // Every request is owed one answer (the relay's own error when Bay cannot give one),
  // and when stdin ends (`printf … | bay mcp`) the relay exits once none is owed and
  // every answer is written, as an agent that closed its end would still read them.
  let writing = 0;
  let inputEnded = false;
  let finish: (code: number) => void = () => {};
  const settle = () => {
    if (inputEnded && ledger.owed === 0 && writing === 0) finish(0);
  };
  const write = (message: JSONRPCMessage) => {
    writing++;
    void local.send(message).finally(() => {
      writing--;
      settle();
    });
  };
  const ledger = new AnswerLedger((id, message) => write({ jsonrpc: "2.0", id, error: { code: RELAY_FAILED, message } }), settle);
  const remote = new StreamableHTTPClientTransport(endpoint(target, "/mcp"), {
    requestInit: { headers: target.headers },
    fetch: ledgerFetch(ledger),
  });
  const local = new StdioServerTransport();
  const initializeIds = new Set<string | number>();
  const done = new Promise<number>((resolve) => {
    finish = resolve;
    local.onclose = () => resolve(0);
    process.stdin.once("end", () => {
      inputEnded = true;
      settle();
    });
  });
  local.onerror = (e) => io.err(`bay mcp: stdin: ${errorMessage(e)}`);
  remote.onerror = (e) => io.err(`bay mcp: ${errorMessage(e)}`);
  remote.onmessage = (message) => {
    // Later requests carry the negotiated protocol version, as the SDK's own client does.
    if ("id" in message && "result" in message && initializeIds.delete(message.id)) {
      const version = (message.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof version === "string") remote.setProtocolVersion(version);
    }
    const answerTo = "id" in message && ("result" in message || "error" in message) ? message.id : undefined;
    if (answerTo !== undefined && !ledger.answered(answerTo)) return; // the relay already answered it
    write(message);
  };
  local.onmessage = (message: JSONRPCMessage) => {
    const request = "method" in message && "id" in message ? message : null;
    if (request?.method === "initialize") initializeIds.add(request.id);
    if (request) ledger.expect(request.id);
    remote.send(message).catch((e: unknown) => {
      io.err(`bay mcp: ${redactUrl(target.url.href)}: ${errorMessage(e)}`);
      // A request must be answered, or the agent waits forever.
      if (request) ledger.failNow(request.id, `Bay unreachable or refused: ${errorMessage(e)}`);
    });
  };
  await remote.start();
  await local.start();
  io.err(`bay mcp: relaying stdio to ${redactUrl(endpoint(target, "/mcp").href)}`);
  const code = await done;
  await remote.close().catch(() => {});
  return code;
}
