import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import type { ContextRegistry } from "../contexts/context-registry.ts";
import { wantsEventStream } from "../sse.ts";
import { validate } from "../validation.ts";
import { withCheckedEnv } from "../../protocol/env-vars.ts";
import { streamKernelExec } from "./exec-stream.ts";

/** The /contexts resource and POST /code/exec. */
export function contextRoutes(deps: { contexts: ContextRegistry }) {
  const { contexts } = deps;
  return new Hono()
    .get(ops.listContexts.honoPath, (c) => c.json({ items: contexts.list() }))
    .post(ops.createContext.honoPath, validate("json", ops.createContext.body), async (c) => {
      const { language, cwd } = c.req.valid("json");
      return c.json(await contexts.create(language, cwd), 201);
    })
    .get(ops.getContext.honoPath, (c) => c.json(contexts.get(c.req.param("context_id"))))
    .delete(ops.deleteContext.honoPath, (c) => {
      contexts.delete(c.req.param("context_id"));
      return c.body(null, 204);
    })
    .post(ops.restartContext.honoPath, async (c) => c.json(await contexts.restart(c.req.param("context_id"))))
    .post(ops.execCode.honoPath, validate("json", withCheckedEnv(ops.execCode.body)), async (c) => {
      const { code, timeout, language, context_id, env, base_env: baseEnv } = c.req.valid("json");
      const kernel = contexts.kernelFor(context_id, language);
      const signal = c.req.raw.signal;
      if (wantsEventStream(c.req.raw)) return streamKernelExec(signal, kernel, code, timeout, { env, baseEnv });
      return c.json(await kernel.exec(code, timeout, { signal, env, baseEnv }));
    });
}
