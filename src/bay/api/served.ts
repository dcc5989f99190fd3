/** Whether a request came through Bun's server, and that server. */
import type { Context } from "hono";

/** What Bay asks of Bun's server (Hono's `env` under Bun.serve): the peer of a request, null once it is closed. */
export interface BunServer {
  requestIP(req: Request): { address: string } | null;
}

/**
 * The server a request came through, or undefined when it was built in process
 * (`app.request` in tests, MCP's own calls), which no socket carried.
 */
export function bunServer(c: Context): BunServer | undefined {
  const env = c.env as { requestIP?: unknown } | undefined;
  return typeof env?.requestIP === "function" ? (env as BunServer) : undefined;
}
