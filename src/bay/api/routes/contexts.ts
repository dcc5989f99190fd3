/** Code contexts of a sandbox and code execution in them: one domain call each, the Ship's answer relayed. */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { callContext, relay, wantsEventStream } from "../relay.ts";

export function contextRoutes(deps: AppDeps): Hono {
  const { sandboxContexts: contexts } = deps;
  const app = new Hono();

  app.get(ops.listContexts.honoPath, validate("param", ops.listContexts.params), async (c) =>
    relay(c, await contexts.list(callContext(c, c.req.valid("param").id))),
  );

  app.post(ops.createContext.honoPath, validate("param", ops.createContext.params), validate("json", ops.createContext.body), async (c) =>
    relay(c, await contexts.create(callContext(c, c.req.valid("param").id), c.req.valid("json"))),
  );

  app.get(ops.getContext.honoPath, validate("param", ops.getContext.params), async (c) => {
    const { id, context_id } = c.req.valid("param");
    return relay(c, await contexts.get(callContext(c, id), context_id));
  });

  app.delete(ops.deleteContext.honoPath, validate("param", ops.deleteContext.params), async (c) => {
    const { id, context_id } = c.req.valid("param");
    return relay(c, await contexts.delete(callContext(c, id), context_id));
  });

  app.post(ops.restartContext.honoPath, validate("param", ops.restartContext.params), async (c) => {
    const { id, context_id } = c.req.valid("param");
    return relay(c, await contexts.restart(callContext(c, id), context_id));
  });

  app.post(ops.execCode.honoPath, validate("param", ops.execCode.params), validate("json", ops.execCode.body), async (c) =>
    relay(c, await contexts.exec(callContext(c, c.req.valid("param").id), c.req.valid("json"), wantsEventStream(c))),
  );
  return app;
}
