import { Hono } from "hono";
import { z } from "zod";
import type { PythonKernel } from "../kernel/python-kernel.ts";
import { validate } from "../validation.ts";

const execBody = z.object({
  code: z.string(),
  timeout: z.number().positive().max(300).default(30),
});

/** POST /ipython/exec. */
export function ipythonRoutes(deps: { kernel: PythonKernel }) {
  return new Hono().post("/ipython/exec", validate("json", execBody), async (c) => {
    const { code, timeout } = c.req.valid("json");
    // The request's signal aborts when the client disconnects: a queued exec is then skipped.
    return c.json(await deps.kernel.exec(code, timeout, c.req.raw.signal));
  });
}
