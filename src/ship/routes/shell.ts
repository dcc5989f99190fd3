import { stat } from "node:fs/promises";
import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import { ShipError } from "../errors.ts";
import { resolveExisting } from "../paths.ts";
import { execCommand } from "../shell/exec-command.ts";
import type { ProcessRegistry } from "../shell/process-registry.ts";
import { validate } from "../validation.ts";

// The shape is the protocol's; on top, a NUL byte cannot reach execve (and an env
// name cannot hold "="): refuse them here as validation_error rather than failing in spawn.
const execBody = ops.execShell.body.superRefine((body, ctx) => {
  if (body.command.includes("\0")) ctx.addIssue({ code: "custom", path: ["command"], message: "must not contain a NUL byte" });
  for (const [name, value] of Object.entries(body.env ?? {})) {
    if (name === "" || name.includes("\0") || name.includes("=")) {
      ctx.addIssue({ code: "custom", path: ["env", name], message: "must not be empty or contain NUL or '='" });
    }
    if (value.includes("\0")) ctx.addIssue({ code: "custom", path: ["env", name], message: "must not contain a NUL byte" });
  }
});

async function workingDir(workspace: string, cwd: string | undefined): Promise<string> {
  const target = await resolveExisting(workspace, cwd ?? ".");
  if (!(await stat(target.absolute)).isDirectory()) {
    throw new ShipError("validation_error", `cwd is not a directory: ${target.relative}`);
  }
  return target.absolute;
}

/** POST /shell/exec and the /shell/processes resource. */
export function shellRoutes(deps: { workspace: string; processes: ProcessRegistry; maxOutputBytes: number }) {
  return new Hono()
    .post(ops.execShell.honoPath, validate("json", execBody), async (c) => {
      const body = c.req.valid("json");
      const spec = { command: body.command, cwd: await workingDir(deps.workspace, body.cwd), env: body.env };
      if (body.background) {
        const item = deps.processes.start(spec);
        return c.json({
          success: true,
          output: "",
          error: "",
          exit_code: null,
          truncated: false,
          process_id: item.process_id,
        });
      }
      return c.json(await execCommand({ ...spec, timeoutSeconds: body.timeout, maxOutputBytes: deps.maxOutputBytes }));
    })
    .get(ops.listProcesses.honoPath, (c) => c.json({ items: deps.processes.list() }))
    .get(ops.getProcess.honoPath, (c) => c.json(deps.processes.get(c.req.param("process_id"))))
    .delete(ops.killProcess.honoPath, async (c) => c.json(await deps.processes.kill(c.req.param("process_id"))));
}
