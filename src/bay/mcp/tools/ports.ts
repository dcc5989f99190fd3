/**
 * A request for a server running in a sandbox (`…/ports/{port}/{path}`): an agent
 * that started a dev server or an API tries it. Bay's rules apply as for REST
 * (what of the request reaches the server, what of the answer comes back); the
 * tool reads the answer as text, bounded.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { BayCallError, type BayCaller, sandboxPath } from "../bay-caller.ts";
import { sandboxId } from "./ids.ts";
import { guarded, json } from "./result.ts";

/** How much of an answer's body the tool returns. */
export const MAX_ANSWER_CHARS = 64 * 1024;
const SHOWN_HEADERS = ["content-type", "content-length", "location", "content-encoding"];

const input = {
  sandbox_id: sandboxId,
  port: z.number().int().min(1).max(65535).describe("The port the server listens on in the sandbox."),
  path: z
    .string()
    .max(8192)
    .regex(/^\/[^\s#]*$/, "a path starts with '/' and has no spaces or '#'")
    .optional()
    .describe("Path and query for the server, e.g. /api/items?page=2 (default /)."),
  method: z.enum(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]).optional().describe("Default GET."),
  headers: z.record(z.string().max(256), z.string().max(8192)).optional().describe("Request headers for the server."),
  body: z
    .string()
    .max(1024 * 1024)
    .optional()
    .describe("Request body (text)."),
};

export function registerPortTools(server: McpServer, bay: BayCaller): void {
  server.registerTool(
    "http_request",
    {
      title: "Request a server in the sandbox",
      description:
        "Sends an HTTP request to a server listening in the sandbox on `port` (started with run_shell, background) and returns its status, main headers and body (text, first 64 KiB). Nothing listening: a port_closed error.",
      inputSchema: input,
    },
    ({ sandbox_id, port, path, method, headers, body }) =>
      guarded(async () => {
        const prefix = sandboxPath(sandbox_id, `/ports/${port}`);
        const target = `${prefix}${path ?? "/"}`;
        // Dot segments would leave the server's path for another route of Bay's.
        const resolved = new URL(target, "http://bay").pathname;
        if (resolved !== prefix && !resolved.startsWith(`${prefix}/`)) {
          throw new BayCallError(400, "validation_error", "path may not contain '.' or '..' segments that leave the server's path");
        }
        const res = await bay.raw(method ?? "GET", target, { ...(headers ? { headers } : {}), ...(body !== undefined ? { body } : {}) });
        if (!res.headers.has("x-bay-upstream")) {
          // Bay's own error (not found, port_closed, limits): as every tool reports one.
          const err = ((await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null)?.error;
          throw new BayCallError(res.status, err?.code ?? "internal_error", err?.message ?? `HTTP ${res.status}`);
        }
        const { text, more } = await headOf(res, MAX_ANSWER_CHARS * 4);
        const cut = more || text.length > MAX_ANSWER_CHARS;
        const shown = Object.fromEntries(SHOWN_HEADERS.flatMap((h) => (res.headers.has(h) ? [[h, res.headers.get(h)!]] : [])));
        return json({
          status: res.status,
          headers: shown,
          body: text.length > MAX_ANSWER_CHARS ? text.slice(0, MAX_ANSWER_CHARS) : text,
          ...(cut ? { truncated: true } : {}),
        });
      }),
  );
}

/**
 * The first `maxBytes` of an answer's body as text, the rest never read (the server is
 * the sandbox's: its answer may be endless; review s89 H1 read it whole into Bay's
 * memory first). `more`: the body reached `maxBytes` (whether or not more would have come).
 */
async function headOf(res: Response, maxBytes: number): Promise<{ text: string; more: boolean }> {
  if (!res.body) return { text: "", more: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let more = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size >= maxBytes) {
        // Not another read to learn whether more comes: a server may hold its answer open (review s90).
        more = true;
        break;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = Buffer.concat(chunks).subarray(0, maxBytes);
  return { text: new TextDecoder().decode(bytes), more };
}
