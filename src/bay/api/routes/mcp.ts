/**
 * POST /mcp: Bay's MCP server over Streamable HTTP, stateless — every POST
 * gets a fresh server and transport, so any replica answers any message and
 * nothing is kept between requests. Authentication, rate limit and body limit
 * ran before this handler (app.ts); the tools call Bay's own /v1 routes
 * in-process with the caller's credentials (mcp/bay-caller.ts).
 *
 * A client that accepts `text/event-stream` gets the answer as an SSE stream
 * (with keep-alive comments during long runs); one that accepts only JSON,
 * or says nothing, gets plain JSON. GET and DELETE /mcp (server-initiated
 * streams, session ends) do not exist in stateless mode and answer 405.
 *
 * The MCP SDK is loaded on the first /mcp request, not at start: a Bay nobody
 * talks MCP to never pays its ~20 MiB of resident memory.
 */
import { Hono } from "hono";
import { BayError } from "../../errors.ts";
import type { AppRequest } from "../../mcp/bay-caller.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";

/** The SDK's transport and Bay's server, imported once. */
async function loadMcp() {
  const [{ WebStandardStreamableHTTPServerTransport }, { createMcpServer }, { BayCaller }] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"),
    import("../../mcp/server.ts"),
    import("../../mcp/bay-caller.ts"),
  ]);
  return { WebStandardStreamableHTTPServerTransport, createMcpServer, BayCaller };
}

export function mcpRoutes(deps: AppDeps, request: AppRequest): Hono {
  const app = new Hono();
  let mcp: ReturnType<typeof loadMcp> | null = null;
  app.post(ops.postMcp.honoPath, validate("json", ops.postMcp.body), async (c) => {
    mcp ??= loadMcp();
    const { WebStandardStreamableHTTPServerTransport, createMcpServer, BayCaller } = await mcp;
    const message = c.req.valid("json");
    const sse = (c.req.header("accept") ?? "").includes("text/event-stream");
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !sse });
    const server = createMcpServer(new BayCaller(request, c), deps.config.server.version);
    await server.connect(transport);
    // The SDK insists that Accept lists both types; which one answers was decided above.
    const headers = new Headers(c.req.raw.headers);
    headers.set("accept", "application/json, text/event-stream");
    const res = await transport.handleRequest(new Request(c.req.raw.url, { method: "POST", headers }), { parsedBody: message });
    // The SDK refuses some messages our schema lets through (params that are not an
    // object, …) with its own JSON-RPC error body; a refused request is a 400 in Bay's model.
    if (res.status >= 400) {
      await server.close();
      throw await protocolRefusal(res);
    }
    // A JSON answer is complete here; an SSE stream closes itself after its last response.
    if (!sse) await server.close();
    const out = new Headers(res.headers);
    out.set("X-Request-Id", c.get("requestId"));
    return new Response(res.body, { status: res.status, headers: out });
  });
  return app;
}

/** A validation_error carrying the SDK's own reason (its JSON-RPC error message). */
async function protocolRefusal(res: Response): Promise<BayError> {
  let reason = `the MCP transport refused the message (HTTP ${res.status})`;
  try {
    const body = (await res.json()) as { error?: { message?: unknown } };
    if (typeof body.error?.message === "string") reason = body.error.message.slice(0, 200);
  } catch {
    // no JSON-RPC body: keep the generic reason
  }
  return new BayError("validation_error", reason, { details: { issues: [{ path: "json", message: reason }] } });
}
