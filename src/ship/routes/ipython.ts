import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import type { SupervisedKernel } from "../kernel/supervised-kernel.ts";
import { wantsEventStream } from "../sse.ts";
import { validate } from "../validation.ts";
import { withCheckedEnv } from "../../protocol/env-vars.ts";
import { streamKernelExec } from "./exec-stream.ts";

/** POST /ipython/exec: the default Python context (JSON, or an event stream when asked for). */
export function ipythonRoutes(deps: { kernel: SupervisedKernel }) {
  return new Hono().post(ops.execPython.honoPath, validate("json", withCheckedEnv(ops.execPython.body)), async (c) => {
    const { code, timeout, env, base_env: baseEnv } = c.req.valid("json");
    const signal = c.req.raw.signal;
    if (wantsEventStream(c.req.raw)) return streamKernelExec(signal, deps.kernel, code, timeout, { env, baseEnv });
    // The request's signal aborts when the client disconnects: a queued exec is then skipped.
    return c.json(await deps.kernel.exec(code, timeout, { signal, env, baseEnv }));
  });
}
