/** File watch on a sandbox: the Ship's event stream relayed as it is produced. */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { callContext, relay } from "../relay.ts";

export function watchRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get(ops.watchFiles.honoPath, validate("param", ops.watchFiles.params), validate("query", ops.watchFiles.query), async (c) => {
    const { path, recursive } = c.req.valid("query");
    return relay(c, await deps.sandboxWatch.watch(callContext(c, c.req.valid("param").id), path, recursive));
  });
  return app;
}
