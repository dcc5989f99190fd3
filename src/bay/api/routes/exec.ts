/** Python and shell capabilities of a sandbox: one domain call each, the Ship's answer (JSON or an event stream) relayed. */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { callContext, relay, wantsEventStream } from "../relay.ts";

export function execRoutes(deps: AppDeps): Hono {
  const { sandboxExec } = deps;
  const app = new Hono();

  // The two execs are the hot path: a plain function chaining the relay (one promise fewer than an async one).
  app.post(ops.execPython.honoPath, validate("param", ops.execPython.params), validate("json", ops.execPython.body), (c) =>
    sandboxExec.python(callContext(c, c.req.valid("param").id), c.req.valid("json"), wantsEventStream(c)).then((res) => relay(c, res)),
  );

  app.post(ops.execShell.honoPath, validate("param", ops.execShell.params), validate("json", ops.execShell.body), (c) =>
    sandboxExec.shell(callContext(c, c.req.valid("param").id), c.req.valid("json"), wantsEventStream(c)).then((res) => relay(c, res)),
  );

  app.get(ops.listShellProcesses.honoPath, validate("param", ops.listShellProcesses.params), async (c) =>
    relay(c, await sandboxExec.listProcesses(callContext(c, c.req.valid("param").id))),
  );

  app.get(ops.getShellProcess.honoPath, validate("param", ops.getShellProcess.params), async (c) => {
    const { id, process_id } = c.req.valid("param");
    return relay(c, await sandboxExec.getProcess(callContext(c, id), process_id));
  });

  app.delete(ops.killShellProcess.honoPath, validate("param", ops.killShellProcess.params), async (c) => {
    const { id, process_id } = c.req.valid("param");
    return relay(c, await sandboxExec.killProcess(callContext(c, id), process_id));
  });
  return app;
}
