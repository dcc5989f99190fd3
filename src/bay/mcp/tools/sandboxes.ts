/** Sandbox lifecycle tools: profiles, create, list, delete. */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { Profile, Sandbox, SandboxList } from "../../api/generated/index.ts";
import { type BayCaller, sandboxPath } from "../bay-caller.ts";
import { sandboxId } from "./ids.ts";
import { guarded, json, text } from "./result.ts";

/** The fields a model needs; timestamps as Bay sends them. */
const summary = (s: Sandbox) => ({
  id: s.id,
  status: s.status,
  profile: s.profile,
  workspace_id: s.workspace_id,
  expires_at: s.expires_at,
});

export function registerSandboxTools(server: McpServer, bay: BayCaller): void {
  server.registerTool(
    "list_profiles",
    {
      title: "List runtime profiles",
      description: "Lists the runtime profiles a sandbox can be created with (python-data adds numpy, pandas, matplotlib).",
      annotations: { readOnlyHint: true },
    },
    () =>
      guarded(async () => {
        const r = await bay.json<{ items: Profile[] }>("GET", "/v1/profiles");
        return json(r.body.items.map((p) => ({ id: p.id, description: p.description, capabilities: p.capabilities })));
      }),
  );

  server.registerTool(
    "create_sandbox",
    {
      title: "Create a sandbox",
      description:
        "Creates a sandbox and returns its id. Compute starts on the first code, shell or file call; /workspace persists until the sandbox is deleted.",
      inputSchema: {
        profile: z
          .string()
          .min(1)
          .max(64)
          .optional()
          .describe("Profile id (default python-default; python-data for numpy/pandas/matplotlib)."),
        ttl: z.number().int().min(0).optional().describe("Seconds until the sandbox expires; 0 or absent: never."),
        workspace_id: z.string().min(1).max(128).optional().describe("An external workspace (ws-…) to mount at /workspace."),
      },
    },
    (args) =>
      guarded(async () => {
        const r = await bay.json<Sandbox>("POST", "/v1/sandboxes", args);
        return json(summary(r.body));
      }),
  );

  server.registerTool(
    "list_sandboxes",
    {
      title: "List sandboxes",
      description: "Lists your sandboxes, newest first.",
      inputSchema: {
        status: z.enum(["idle", "starting", "ready", "failed", "expired"]).optional(),
        limit: z.number().int().min(1).max(200).optional(),
        cursor: z.string().min(1).max(512).optional().describe("next_cursor of a previous page."),
      },
      annotations: { readOnlyHint: true },
    },
    (args) =>
      guarded(async () => {
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(args)) if (v !== undefined) q.set(k, String(v));
        const r = await bay.json<SandboxList>("GET", `/v1/sandboxes${q.size ? `?${q}` : ""}`);
        return json({ items: r.body.items.map(summary), next_cursor: r.body.next_cursor });
      }),
  );

  server.registerTool(
    "delete_sandbox",
    {
      title: "Delete a sandbox",
      description: "Deletes a sandbox, its compute and its managed workspace (its files are gone).",
      inputSchema: { sandbox_id: sandboxId },
      annotations: { destructiveHint: true, idempotentHint: true },
    },
    ({ sandbox_id }) =>
      guarded(async () => {
        await bay.json("DELETE", sandboxPath(sandbox_id));
        return text(`deleted ${sandbox_id}`);
      }),
  );
}
