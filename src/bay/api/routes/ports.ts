/** Requests for servers running in a sandbox: `/v1/sandboxes/{id}/ports/{port}/{path}`, any of five methods (HEAD as GET). */
import { type Context, Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { sentBodyContext } from "../relay.ts";

/**
 * The route's path: `{path}`, the rest of the URL path with its slashes, is a
 * trailing wildcard (which keeps Hono on its RegExpRouter; a `{.*}` parameter
 * would not). `/ports/8080` and `/ports/8080/` both reach the server's root.
 */
export const PORT_ROUTE = ops.portGet.honoPath.replace("/:path", "/*");
/** The route's own parameters (`path` is read from the URL as sent). */
const params = ops.portGet.params.pick({ id: true, port: true });

/** The path after `/ports/{port}` and the query, as the client sent them (percent-encoding kept). */
function restOf(url: string): string {
  const { pathname, search } = new URL(url);
  // ["", "v1", "sandboxes", id, "ports", port, ...rest]
  return `/${pathname.split("/").slice(6).join("/")}${search}`;
}

export function portRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const handler = async (c: Context) => {
    const { id, port } = c.req.param() as { id: string; port: string };
    const req = c.req.raw;
    return deps.sandboxPorts.request(sentBodyContext(c, id), {
      port: Number(port),
      method: req.method,
      rest: restOf(req.url),
      headers: req.headers,
      body: req.body,
    });
  };
  app.on(["GET", "POST", "PUT", "PATCH", "DELETE"], PORT_ROUTE, validate("param", params), handler);
  return app;
}
