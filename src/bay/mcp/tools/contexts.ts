/**
 * Code-context tools (contract: "Code contexts"): run code in Python, JavaScript
 * or TypeScript contexts of a sandbox, each its own kernel whose state persists
 * between calls; create, list and delete contexts. Results read like run_python's.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Context, PythonExecResult } from "../../api/generated/index.ts";
import { type BayCaller, sandboxPath } from "../bay-caller.ts";
import { execResultContent } from "./code.ts";
import { guarded } from "./result.ts";
import { contextId, sandboxId } from "./ids.ts";
import { execFields } from "./request-fields.ts";

const { language } = execFields;
const contextPath = (id: string, contextId: string) => sandboxPath(id, `/contexts/${encodeURIComponent(contextId)}`);

export function registerContextTools(server: McpServer, bay: BayCaller): void {
  server.registerTool(
    "run_code",
    {
      title: "Run code in a context",
      description:
        "Runs Python, JavaScript or TypeScript in a code context of the sandbox (the language's default context unless context_id names one); variables persist between calls in the same context. Returns output, the last expression's value, errors, and images.",
      inputSchema: {
        sandbox_id: sandboxId,
        code: execFields.code,
        language: language.optional(),
        context_id: contextId.optional(),
        timeout: execFields.timeout,
        env: execFields.env,
      },
    },
    ({ sandbox_id, code, language, context_id, timeout, env }) =>
      guarded(async () => {
        const r = await bay.json<PythonExecResult>("POST", sandboxPath(sandbox_id, "/code/exec"), {
          code,
          ...(language ? { language } : {}),
          ...(context_id ? { context_id } : {}),
          ...(timeout ? { timeout } : {}),
          ...(env ? { env } : {}),
        });
        return execResultContent(r.body);
      }),
  );

  server.registerTool(
    "create_context",
    {
      title: "Create a code context",
      description:
        "Starts a fresh kernel (python, javascript or typescript) in the sandbox; returns the context as JSON (its id for run_code).",
      inputSchema: { sandbox_id: sandboxId, language, cwd: execFields.contextCwd },
    },
    ({ sandbox_id, language, cwd }) =>
      guarded(async () => {
        const r = await bay.json<Context>("POST", sandboxPath(sandbox_id, "/contexts"), { language, ...(cwd ? { cwd } : {}) });
        return { content: [{ type: "text", text: JSON.stringify(r.body) }] };
      }),
  );

  server.registerTool(
    "list_contexts",
    { title: "List code contexts", description: "The sandbox's code contexts as JSON.", inputSchema: { sandbox_id: sandboxId } },
    ({ sandbox_id }) =>
      guarded(async () => {
        const r = await bay.json<unknown>("GET", sandboxPath(sandbox_id, "/contexts"));
        return { content: [{ type: "text", text: JSON.stringify(r.body) }] };
      }),
  );

  server.registerTool(
    "delete_context",
    {
      title: "Delete a code context",
      description: "Stops a context's kernel; its state is gone.",
      inputSchema: { sandbox_id: sandboxId, context_id: contextId },
    },
    ({ sandbox_id, context_id }) =>
      guarded(async () => {
        await bay.json<unknown>("DELETE", contextPath(sandbox_id, context_id));
        return { content: [{ type: "text", text: `deleted ${context_id}` }] };
      }),
  );
}
