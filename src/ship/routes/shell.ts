import { stat } from "node:fs/promises";
import { Hono } from "hono";
import { z } from "zod";
import { ShipError } from "../errors.ts";
import { resolveExisting } from "../paths.ts";
import { execCommand } from "../shell/exec-command.ts";
import type { ProcessRegistry } from "../shell/process-registry.ts";
import { validate } from "../validation.ts";

// A NUL byte cannot reach execve (and an env name cannot hold "="): refuse them here
// as validation_error rather than failing in spawn.
const noNul = (value: string) => !value.includes("\0");
const envName = z
  .string()
  .min(1)
  .refine((name) => noNul(name) && !name.includes("="), "must not be empty or contain NUL or '='");

const execBody = z.object({
  command: z.string().min(1).refine(noNul, "must not contain a NUL byte"),
  timeout: z.number().min(1).max(300).default(30),
  cwd: z.string().optional(),
  env: z.record(envName, z.string().refine(noNul, "must not contain a NUL byte")).optional(),
  background: z.boolean().default(false),
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
    .post("/shell/exec", validate("json", execBody), async (c) => {
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
    .get("/shell/processes", (c) => c.json({ items: deps.processes.list() }))
    .get("/shell/processes/:process_id", (c) => c.json(deps.processes.get(c.req.param("process_id"))))
    .delete("/shell/processes/:process_id", async (c) => c.json(await deps.processes.kill(c.req.param("process_id"))));
}
