import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import type { PythonKernel } from "../kernel/python-kernel.ts";
import { validate } from "../validation.ts";

/** POST /ipython/exec. */
export function ipythonRoutes(deps: { kernel: PythonKernel }) {
  return new Hono().post(ops.execPython.honoPath, validate("json", ops.execPython.body), async (c) => {
    const { code, timeout } = c.req.valid("json");
    // The request's signal aborts when the client disconnects: a queued exec is then skipped.
    return c.json(await deps.kernel.exec(code, timeout, c.req.raw.signal));
  });
}
