/**
 * Requests for servers running in a sandbox: `/v1/sandboxes/{id}/ports/{port}/{path}`,
 * any of five methods (HEAD as GET), and a GET that upgrades to a WebSocket.
 */
import { type Context, Hono } from "hono";
import { pathAfter } from "../../../protocol/path-after.ts";
import type { CallContext } from "../../domain/capability-router.ts";
import { BAY_UPSTREAM_HEADER, type PortOrigin, type PortSocketRequest } from "../../domain/sandbox-ports.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { callContext, sentBodyContext } from "../relay.ts";
import { badHandshake, handshakeValid, isUpgradeRequest, notAnUpgrade, upgradeToWebSocket } from "../websocket.ts";

/**
 * The route's path: `{path}`, the rest of the URL path with its slashes, is a
 * trailing wildcard (which keeps Hono on its RegExpRouter; a `{.*}` parameter
 * would not). `/ports/8080` and `/ports/8080/` both reach the server's root.
 */
export const PORT_ROUTE = ops.portGet.honoPath.replace("/:path", "/*");
/** The route's own parameters (`path` is read from the URL as sent). */
const params = ops.portGet.params.pick({ id: true, port: true });
/** ["", "v1", "sandboxes", id, "ports", port, ...rest] */
const REST_AT = 6;
/** A client that upgraded but never opened within this is let go. */
const OPEN_GRACE_MS = 10_000;

/**
 * Upgrades the client's request to a WebSocket bridged to the server on its port
 * in the sandbox (every refusal before the upgrade is an answer in the error model).
 */
export async function portSocket(
  deps: Pick<AppDeps, "sandboxPorts">,
  c: Context,
  ctx: CallContext,
  req: PortSocketRequest,
  origin: PortOrigin = "bay",
): Promise<Response> {
  if (!handshakeValid(c.req.raw)) throw badHandshake();
  const bridge = await deps.sandboxPorts.openSocket(ctx, req, origin);
  // The server's choice; empty when it chose none (Bun would otherwise answer the client's first offer itself).
  const headers = { "X-Request-Id": c.get("requestId"), [BAY_UPSTREAM_HEADER]: "101", "Sec-WebSocket-Protocol": bridge.protocol };
  let opened = false;
  const upgraded = upgradeToWebSocket(
    c,
    {
      open: (ws) => {
        opened = true;
        bridge.attach(ws);
      },
      message: (_ws, data) => bridge.fromClient(data),
      drain: () => bridge.drained(),
      close: (_ws, code, reason) => bridge.clientClosed(code, reason),
    },
    headers,
  );
  if (!upgraded) {
    bridge.clientClosed(1000, "");
    throw notAnUpgrade();
  }
  const timer = setTimeout(() => {
    if (!opened) bridge.clientClosed(1000, "");
  }, OPEN_GRACE_MS);
  timer.unref?.();
  // Bun has taken the connection over: this response is never sent.
  return new Response(null);
}

export function portRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const handler = async (c: Context) => {
    const { id, port } = c.req.param() as { id: string; port: string };
    const req = c.req.raw;
    if (req.method === "GET" && isUpgradeRequest(req)) {
      return portSocket(deps, c, callContext(c, id), { port: Number(port), rest: pathAfter(req.url, REST_AT), headers: req.headers });
    }
    return deps.sandboxPorts.request(sentBodyContext(c, id), {
      port: Number(port),
      method: req.method,
      rest: pathAfter(req.url, REST_AT),
      url: req.url,
      headers: req.headers,
      body: req.body,
    });
  };
  app.on(["GET", "POST", "PUT", "PATCH", "DELETE"], PORT_ROUTE, validate("param", params), handler);
  return app;
}
