/** File tools on a sandbox's /workspace (text files; binary ones through the REST download). */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { DirectoryListing, FileContent } from "../../api/generated/index.ts";
import { type BayCaller, sandboxPath } from "../bay-caller.ts";
import { guarded, json, text } from "./result.ts";
import { sandboxId } from "./ids.ts";

const path = z.string().min(1).max(4096).describe("Path relative to /workspace.");

export function registerFileTools(server: McpServer, bay: BayCaller): void {
  server.registerTool(
    "read_file",
    {
      title: "Read a text file",
      description: "Reads a UTF-8 text file from the sandbox's /workspace.",
      inputSchema: { sandbox_id: sandboxId, path },
      annotations: { readOnlyHint: true },
    },
    ({ sandbox_id, path }) =>
      guarded(async () => {
        const r = await bay.json<FileContent>("GET", sandboxPath(sandbox_id, `/filesystem/files?path=${encodeURIComponent(path)}`));
        return text(r.body.content);
      }),
  );

  server.registerTool(
    "write_file",
    {
      title: "Write a text file",
      description: "Writes (creates or replaces) a UTF-8 text file in the sandbox's /workspace; parent directories are created.",
      inputSchema: { sandbox_id: sandboxId, path, content: z.string() },
      annotations: { idempotentHint: true },
    },
    ({ sandbox_id, path, content }) =>
      guarded(async () => {
        await bay.json("PUT", sandboxPath(sandbox_id, "/filesystem/files"), { path, content });
        return text(`wrote ${Buffer.byteLength(content, "utf8")} bytes to ${path}`);
      }),
  );

  server.registerTool(
    "list_files",
    {
      title: "List a directory",
      description: "Lists a directory of the sandbox's /workspace (default: /workspace itself).",
      inputSchema: { sandbox_id: sandboxId, path: path.optional() },
      annotations: { readOnlyHint: true },
    },
    ({ sandbox_id, path }) =>
      guarded(async () => {
        const r = await bay.json<DirectoryListing>(
          "GET",
          sandboxPath(sandbox_id, `/filesystem/directories?path=${encodeURIComponent(path ?? ".")}`),
        );
        const entries = r.body.entries.map((e) => ({ path: e.path, type: e.is_dir ? "dir" : "file", size: e.size }));
        return json({ path: r.body.path, entries, ...(r.body.truncated ? { truncated: true } : {}) });
      }),
  );
}
