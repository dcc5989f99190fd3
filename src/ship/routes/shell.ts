import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import { checkEnvVars } from "../../protocol/env-vars.ts";
import { execCommand } from "../shell/exec-command.ts";
import type { ProcessRegistry } from "../shell/process-registry.ts";
import { wantsEventStream } from "../sse.ts";
import { validate } from "../validation.ts";
import { workingDir } from "../working-dir.ts";
import { streamCommand } from "./exec-stream.ts";

// The shape is the protocol's; on top, a NUL byte cannot reach execve (and an env
// name cannot hold "="): refuse them here as validation_error rather than failing in spawn.
const execBody = ops.execShell.body.superRefine((body, ctx) => {
  if (body.command.includes("\0")) ctx.addIssue({ code: "custom", path: ["command"], message: "must not contain a NUL byte" });
  checkEnvVars(body.env, "env", ctx);
  if (body.stdin && !body.background)
    ctx.addIssue({ code: "custom", path: ["stdin"], message: "only a background process has a stdin to write to" });
  if (body.lifetime_ms !== undefined && !body.background)
    ctx.addIssue({
      code: "custom",
      path: ["lifetime_ms"],
      message: "only a background process has a lifetime (a foreground one has its timeout)",
    });
});

/** POST /shell/exec and the /shell/processes resource. */
export function shellRoutes(deps: { workspace: string; processes: ProcessRegistry; maxOutputBytes: number }) {
  return new Hono()
    .post(ops.execShell.honoPath, validate("json", execBody), async (c) => {
      const body = c.req.valid("json");
      const dir = await workingDir(deps.workspace, body.cwd);
      const spec = { command: body.command, cwd: dir.absolute, cwdPath: dir.relative, env: body.env };
      if (body.background) {
        const item = deps.processes.start({ ...spec, stdin: body.stdin, lifetimeMs: body.lifetime_ms });
        return c.json({
          success: true,
          output: "",
          error: "",
          exit_code: null,
          truncated: false,
          process_id: item.process_id,
        });
      }
      const run = { ...spec, timeoutSeconds: body.timeout, maxOutputBytes: deps.maxOutputBytes };
      if (wantsEventStream(c.req.raw)) return streamCommand(c.req.raw.signal, run);
      return c.json(await execCommand(run));
    })
    .get(ops.listProcesses.honoPath, (c) => c.json({ items: deps.processes.list() }))
    .get(ops.getProcess.honoPath, (c) => c.json(deps.processes.get(c.req.param("process_id"))))
    .delete(ops.killProcess.honoPath, async (c) => c.json(await deps.processes.kill(c.req.param("process_id"))));
}
