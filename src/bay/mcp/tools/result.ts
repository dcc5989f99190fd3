/** Shapes shared by the tools: MCP content blocks and how a Bay error becomes a tool error. */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { BayCallError } from "../bay-caller.ts";

export type ToolResult = CallToolResult;

export const text = (t: string): ToolResult => ({ content: [{ type: "text", text: t }] });

export const json = (value: unknown): ToolResult => text(JSON.stringify(value, null, 2));

/**
 * Runs a tool body; a Bay error (404 for an unknown or another owner's sandbox,
 * 400 for a bad path, 429, …) comes back as a tool error the model can read,
 * `code: message`, rather than a protocol error.
 */
export async function guarded(fn: () => Promise<ToolResult>): Promise<ToolResult> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BayCallError) return { content: [{ type: "text", text: `${e.code}: ${e.message}` }], isError: true };
    throw e;
  }
}
