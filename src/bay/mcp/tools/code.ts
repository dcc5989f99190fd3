/**
 * Code tools: Python in the sandbox's persistent kernel (matplotlib figures
 * come back as MCP image content) and shell commands.
 * Code contexts (several kernels, JavaScript/TypeScript) are in contexts.ts.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { PythonExecResult, ShellExecResult } from "../../api/generated/index.ts";
import { type BayCaller, sandboxPath } from "../bay-caller.ts";
import { sandboxId } from "./ids.ts";
import { execFields } from "./request-fields.ts";
import { guarded, type ToolResult } from "./result.ts";

/** Rich outputs that become image blocks; everything else is summarised as text. */
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/** Text of the run (output, the value, the traceback) first, then one image block per figure. */
export function execResultContent(r: PythonExecResult): ToolResult {
  const content: ToolResult["content"] = [];
  const parts: string[] = [];
  if (r.output) parts.push(r.output.replace(/\n$/, ""));
  for (const d of r.data) {
    if (d.type === "display_data" && d.data["text/plain"] && !IMAGE_TYPES.some((t) => d.data[t])) parts.push(d.data["text/plain"]);
  }
  if (r.error) parts.push(r.error);
  if (r.kernel_restarted) parts.push("[the Python kernel was restarted; variables are gone]");
  if (r.truncated) parts.push("[output truncated]");
  content.push({ type: "text", text: parts.join("\n") || "(no output)" });
  for (const d of r.data) {
    for (const mimeType of IMAGE_TYPES) {
      const data = d.data[mimeType];
      if (data) content.push({ type: "image", data, mimeType });
    }
  }
  return { content, ...(r.success ? {} : { isError: true }) };
}

export function registerCodeTools(server: McpServer, bay: BayCaller): void {
  server.registerTool(
    "run_python",
    {
      title: "Run Python",
      description:
        "Runs Python in the sandbox's persistent IPython kernel (variables survive between calls). Returns stdout, the last expression's value, the traceback on error, and matplotlib figures as PNG images.",
      inputSchema: { sandbox_id: sandboxId, code: execFields.code, timeout: execFields.timeout, env: execFields.env },
    },
    ({ sandbox_id, code, timeout, env }) =>
      guarded(async () => {
        const r = await bay.json<PythonExecResult>("POST", sandboxPath(sandbox_id, "/python/exec"), {
          code,
          ...(timeout ? { timeout } : {}),
          ...(env ? { env } : {}),
        });
        return execResultContent(r.body);
      }),
  );

  server.registerTool(
    "run_shell",
    {
      title: "Run a shell command",
      description:
        "Runs a bash command in /workspace (or cwd) and returns stdout, stderr and the exit code. With background: true it is started and left running (a server, say) and its process id is returned.",
      inputSchema: {
        sandbox_id: sandboxId,
        command: execFields.command,
        cwd: execFields.cwd,
        timeout: execFields.timeout,
        env: execFields.env,
        background: z.boolean().optional().describe("Start it and return at once (default false)."),
      },
    },
    ({ sandbox_id, command, cwd, timeout, env, background }) =>
      guarded(async () => {
        const r = await bay.json<ShellExecResult>("POST", sandboxPath(sandbox_id, "/shell/exec"), {
          command,
          ...(cwd ? { cwd } : {}),
          ...(env ? { env } : {}),
          ...(timeout ? { timeout } : {}),
          ...(background ? { background: true } : {}),
        });
        const b = r.body;
        if (background) return { content: [{ type: "text", text: `started in the background: process ${b.process_id}` }] };
        const parts = [b.output.replace(/\n$/, "")];
        if (b.error) parts.push(`[stderr]\n${b.error.replace(/\n$/, "")}`);
        parts.push(`[exit code ${b.exit_code ?? "none"}${b.truncated ? ", output truncated" : ""}]`);
        return { content: [{ type: "text", text: parts.filter(Boolean).join("\n") }], ...(b.success ? {} : { isError: true }) };
      }),
  );
}
