/** Python and shell capabilities of a sandbox, proxied to its Ship. */
import { Hono } from "hono";
import { normalizeWorkspacePath } from "../../domain/paths.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { execDeadlineMs, JSON_HEADERS, relay } from "../relay.ts";

const SHORT_DEADLINE_MS = 15_000;

export function execRoutes(deps: AppDeps): Hono {
  const { router } = deps;
  const app = new Hono();

  app.post(ops.execPython.honoPath, validate("param", ops.execPython.params), validate("json", ops.execPython.body), async (c) => {
    const body = c.req.valid("json");
    const res = await router.call({
      owner: c.get("owner"),
      sandboxId: c.req.valid("param").id,
      capability: "python",
      operation: "exec",
      method: "POST",
      shipPath: "/ipython/exec",
      headers: JSON_HEADERS(),
      body: JSON.stringify(body),
      timeoutMs: execDeadlineMs(body.timeout),
      requestId: c.get("requestId"),
    });
    return relay(c, res);
  });

  app.post(ops.execShell.honoPath, validate("param", ops.execShell.params), validate("json", ops.execShell.body), async (c) => {
    const body = c.req.valid("json");
    const cwd = body.cwd === undefined ? undefined : normalizeWorkspacePath(body.cwd);
    const res = await router.call({
      owner: c.get("owner"),
      sandboxId: c.req.valid("param").id,
      capability: "shell",
      operation: body.background ? "exec_background" : "exec",
      method: "POST",
      shipPath: "/shell/exec",
      headers: JSON_HEADERS(),
      body: JSON.stringify({ ...body, ...(cwd ? { cwd } : {}) }),
      timeoutMs: execDeadlineMs(body.timeout),
      requestId: c.get("requestId"),
    });
    return relay(c, res);
  });

  app.get(ops.listShellProcesses.honoPath, validate("param", ops.listShellProcesses.params), async (c) => {
    const res = await router.call({
      owner: c.get("owner"),
      sandboxId: c.req.valid("param").id,
      capability: "shell",
      operation: "list_processes",
      method: "GET",
      shipPath: "/shell/processes",
      timeoutMs: SHORT_DEADLINE_MS,
      requestId: c.get("requestId"),
    });
    return relay(c, res);
  });

  for (const [op, method, operation] of [
    [ops.getShellProcess, "GET", "get_process"],
    [ops.killShellProcess, "DELETE", "kill_process"],
  ] as const) {
    app.on(method, op.honoPath, validate("param", op.params), async (c) => {
      const { id, process_id } = c.req.valid("param");
      const res = await router.call({
        owner: c.get("owner"),
        sandboxId: id,
        capability: "shell",
        operation,
        method,
        shipPath: `/shell/processes/${encodeURIComponent(process_id)}`,
        timeoutMs: SHORT_DEADLINE_MS,
        requestId: c.get("requestId"),
      });
      return relay(c, res);
    });
  }
  return app;
}
