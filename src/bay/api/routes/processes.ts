/** Background processes' output, stdin and signals: one domain call each, the Ship's answer relayed (an event stream as it comes). */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { callContext, relay, wantsEventStream } from "../relay.ts";

export function processRoutes(deps: AppDeps): Hono {
  const { sandboxProcesses } = deps;
  const app = new Hono();

  app.get(
    ops.readShellProcessOutput.honoPath,
    validate("param", ops.readShellProcessOutput.params),
    validate("query", ops.readShellProcessOutput.query),
    async (c) => {
      const { id, process_id } = c.req.valid("param");
      const { offset, encoding } = c.req.valid("query");
      const follow = wantsEventStream(c);
      return relay(c, await sandboxProcesses.output(callContext(c, id), process_id, { offset, encoding, follow }));
    },
  );

  app.post(
    ops.writeShellProcessStdin.honoPath,
    validate("param", ops.writeShellProcessStdin.params),
    validate("json", ops.writeShellProcessStdin.body),
    async (c) => {
      const { id, process_id } = c.req.valid("param");
      return relay(c, await sandboxProcesses.stdin(callContext(c, id), process_id, c.req.valid("json")));
    },
  );

  app.post(
    ops.signalShellProcess.honoPath,
    validate("param", ops.signalShellProcess.params),
    validate("json", ops.signalShellProcess.body),
    async (c) => {
      const { id, process_id } = c.req.valid("param");
      return relay(c, await sandboxProcesses.signal(callContext(c, id), process_id, c.req.valid("json")));
    },
  );
  return app;
}
