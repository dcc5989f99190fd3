/**
 * Bay's MCP server: one McpServer per request (the transport is stateless),
 * its tools bound to the caller through a BayCaller. Tool groups live in
 * tools/; a new group (code contexts, say) is one more register call here.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { BayCaller } from "./bay-caller.ts";
import { registerCodeTools } from "./tools/code.ts";
import { registerContextTools } from "./tools/contexts.ts";
import { registerFileTools } from "./tools/files.ts";
import { registerPortTools } from "./tools/ports.ts";
import { registerSandboxTools } from "./tools/sandboxes.ts";

export const MCP_INSTRUCTIONS =
  "Bay runs code in sandboxes. Create a sandbox (create_sandbox), then run_python / run_shell / read_file / write_file / list_files with its id; delete it when done. Python state persists between run_python calls in the same sandbox. A server started in the sandbox (run_shell with background) is reached with http_request.";

export function createMcpServer(bay: BayCaller, version: string): McpServer {
  const server = new McpServer({ name: "bay", version }, { instructions: MCP_INSTRUCTIONS });
  registerSandboxTools(server, bay);
  registerCodeTools(server, bay);
  registerContextTools(server, bay);
  registerFileTools(server, bay);
  registerPortTools(server, bay);
  return server;
}
