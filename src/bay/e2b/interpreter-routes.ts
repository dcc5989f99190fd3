/**
 * The code interpreter of @e2b/code-interpreter: `POST /execute` answers NDJSON
 * and `/contexts` manages contexts, on Bay's code contexts when this Bay has
 * them: an exec streams as it runs (Python, JavaScript, TypeScript; a context
 * id or a language's default context). Without them, Python runs in the
 * sandbox's default kernel through python exec and answers once it ends, and
 * the context routes answer 501.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { MAX_EXEC_TIMEOUT_SECONDS } from "../api/exec-limits.ts";
import { validate, validateOptionalJson } from "../api/middleware/validate.ts";
import type { CallContext } from "../domain/capability-router.ts";
import type { SandboxExec } from "../domain/sandbox-exec.ts";
import { assertEnvVars, MERGED_SET_LIMITS } from "../domain/env-vars.ts";
import { BayError } from "../errors.ts";
import type { DataPlaneAccess, DataPlaneCall } from "./envd/access.ts";
import { operations as ops } from "./generated/openapi/index.ts";
import { executionLines, type PythonResult } from "./interpreter-lines.ts";
import { cancellable, KEEPALIVE_MS, ndjsonBody, ndjsonFromEvents } from "./interpreter-stream.ts";
import { toE2bPath, toWorkspacePath } from "./paths.ts";
import { OlderShips } from "./older-ships.ts";

export type CodeLanguage = "python" | "javascript" | "typescript";

/** What the interpreter needs of Bay's code contexts (domain/sandbox-contexts.ts). */
export interface CodeContexts {
  list(ctx: CallContext): Promise<Response>;
  create(ctx: CallContext, body: { language: CodeLanguage; cwd?: string }): Promise<Response>;
  delete(ctx: CallContext, contextId: string): Promise<Response>;
  restart(ctx: CallContext, contextId: string): Promise<Response>;
  exec(
    ctx: CallContext,
    body: {
      code: string;
      language?: CodeLanguage;
      context_id?: string;
      timeout: number;
      env?: Record<string, string>;
      base_env?: Record<string, string>;
    },
    stream?: boolean,
  ): Promise<Response>;
}

export interface InterpreterRoutesDeps {
  access: DataPlaneAccess;
  exec: SandboxExec;
  contexts?: CodeContexts;
  /** Sandbox-wide environment (create's envVars): every kernel keeps them, as E2B's do. */
  envVars(call: DataPlaneCall): Promise<Record<string, string>>;
  /** Longest a run may take on Bay's side (e2b.run_code_timeout): the SDK's own timeout, or the sandbox's, ends it sooner. */
  runCodeTimeoutSeconds: number;
  /** The JSON body limit, run once the call is authorized (a body is read only for a token's holder). */
  bodyLimit: MiddlewareHandler;
}
const ALIASES: Record<string, CodeLanguage> = {
  python: "python",
  py: "python",
  javascript: "javascript",
  js: "javascript",
  typescript: "typescript",
  ts: "typescript",
};

export function language(raw: string | null | undefined): CodeLanguage {
  const l = ALIASES[(raw ?? "python").toLowerCase()];
  if (!l)
    throw new BayError("validation_error", `language ${raw}: Bay runs python, javascript and typescript`, {
      details: { field: "language" },
    });
  return l;
}

/** A run's own variables (E2B's `env_vars`; null or none: no field), held to half the limit like the sandbox's. */
function runEnv(vars: Record<string, string> | null | undefined): { env?: Record<string, string> } {
  if (!vars || Object.keys(vars).length === 0) return {};
  assertEnvVars(vars, "env_vars", MERGED_SET_LIMITS);
  return { env: vars };
}

/** The sandbox's variables (none: no field). */
async function baseEnv(envVars: InterpreterRoutesDeps["envVars"], call: DataPlaneCall): Promise<{ base_env?: Record<string, string> }> {
  const vars = await envVars(call);
  return Object.keys(vars).length > 0 ? { base_env: vars } : {};
}

interface BayContext {
  id: string;
  language: string;
  cwd: string;
}
const toE2bContext = (c: BayContext) => ({ id: c.id, language: c.language, cwd: toE2bPath(c.cwd) });

export function interpreterRoutes({ access, exec, contexts, envVars, runCodeTimeoutSeconds, bodyLimit }: InterpreterRoutesDeps) {
  const app = new Hono<{ Variables: { call: DataPlaneCall } }>();
  const olderShips = new OlderShips();
  const authorize = (c: Context): Promise<DataPlaneCall> =>
    access.authorize(
      {
        sandboxId: c.req.header("e2b-sandbox-id"),
        accessToken: c.req.header("x-access-token"),
        trafficToken: c.req.header("e2b-traffic-access-token"),
        authorization: undefined,
        requestId: c.get("requestId") ?? "",
        signal: c.req.raw.signal,
      },
      ["envd", "traffic"],
    );
  // Every route's token is checked before its body is read or parsed (review s87); its body limit after that.
  for (const path of ["/execute", "/contexts", "/contexts/*"]) {
    app.use(path, async (c, next) => {
      c.set("call", await authorize(c));
      await next();
    });
    app.on("POST", path, bodyLimit);
  }
  const needContexts = (): CodeContexts => {
    if (!contexts) throw new BayError("not_implemented", "code contexts are not available on this Bay");
    return contexts;
  };

  app.post("/execute", validate("json", ops.e2bExecute.body), async (c) => {
    const call = c.get("call");
    const body = c.req.valid("json");
    if (body.context_id && body.language)
      throw new BayError("validation_error", "only one of context_id or language can be given", { details: { field: "language" } });
    // The sandbox's variables are kept by the kernel; the run's own are put back after it (E2B's rules).
    const env = { ...runEnv(body.env_vars), ...(await baseEnv(envVars, call)) };
    c.header("Content-Type", "application/x-ndjson");
    if (contexts) {
      const lang = body.context_id ? undefined : language(body.language);
      const res = await olderShips.run(call.sandboxId, runCodeTimeoutSeconds, (timeout) =>
        contexts.exec(
          call,
          {
            code: body.code,
            timeout,
            ...env,
            ...(body.context_id ? { context_id: body.context_id } : { language: lang }),
          },
          true,
        ),
      );
      if (!res.body) throw new BayError("ship_error", "the sandbox runtime answered no event stream");
      const events = cancellable(res.body);
      return c.body(ndjsonBody(ndjsonFromEvents(events.stream, KEEPALIVE_MS), events.cancel), 200);
    }
    if (body.context_id) needContexts();
    if (language(body.language) !== "python") throw new BayError("not_implemented", "only python runs without Bay's code contexts");
    // One JSON answer: a client that leaves does not interrupt a running cell here, so Bay's own limit holds.
    const timeout = Math.min(runCodeTimeoutSeconds, MAX_EXEC_TIMEOUT_SECONDS);
    const result = (await (await exec.python(call, { code: body.code, timeout, ...env })).json()) as PythonResult;
    return c.body(
      `${executionLines(result)
        .map((l) => JSON.stringify(l))
        .join("\n")}\n`,
      200,
    );
  });

  app.get("/contexts", async (c) => {
    const call = c.get("call");
    const { items } = (await (await needContexts().list(call)).json()) as { items: BayContext[] };
    return c.json(items.map(toE2bContext), 200);
  });

  app.post("/contexts", validateOptionalJson(ops.e2bCreateContext.body), async (c) => {
    const call = c.get("call");
    const body = (c.req.valid("json") ?? {}) as { language?: string | null; cwd?: string | null };
    const req = { language: language(body.language), ...(body.cwd ? { cwd: toWorkspacePath(body.cwd) } : {}) };
    const created = (await (await needContexts().create(call, req)).json()) as BayContext;
    return c.json(toE2bContext(created), 200);
  });

  app.delete("/contexts/:contextID", async (c) => {
    const call = c.get("call");
    await (await needContexts().delete(call, c.req.param("contextID"))).body?.cancel();
    return c.body(null, 204);
  });

  app.post("/contexts/:contextID/restart", async (c) => {
    const call = c.get("call");
    await (await needContexts().restart(call, c.req.param("contextID"))).body?.cancel();
    return c.body(null, 204);
  });
  return app;
}
