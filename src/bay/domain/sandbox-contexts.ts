/**
 * Code contexts of a sandbox (several kernels, several languages) and code execution
 * in them: each method is one call through the CapabilityRouter to the sandbox's Ship,
 * answered with the Ship's response unread. The profile's languages are checked before
 * any container starts. Contexts live in the Ship: a stopped sandbox has none left.
 */
import type { CodeExecRequest, CreateContextRequest } from "../../protocol/ship/index.ts";
import { DEADLINES, execDeadlineMs } from "../runtime/ship-client.ts";
import type { CallContext, CallPlan, CapabilityRouter } from "./capability-router.ts";
import { assertEnvVars } from "./env-vars.ts";
import { normalizeWorkspacePath } from "./paths.ts";

export class SandboxContexts {
  constructor(private readonly router: CapabilityRouter) {}

  list(ctx: CallContext): Promise<Response> {
    return this.manage(ctx, "list_contexts", DEADLINES.contexts, (ship, s) => ship.listContexts(s, ctx));
  }

  /** Starts a context; its cwd is checked before any container starts. */
  create(ctx: CallContext, body: CreateContextRequest): Promise<Response> {
    const request = body.cwd === undefined ? body : { ...body, cwd: normalizeWorkspacePath(body.cwd) };
    return this.router.call(ctx, {
      capability: "code",
      language: body.language,
      operation: "create_context",
      coverMs: DEADLINES.contextStart,
      // A context that started while the first Ship died is lost with it: starting one again is the same request.
      replayable: true,
      run: (ship, s) => ship.createContext(s, request, ctx),
    });
  }

  get(ctx: CallContext, contextId: string): Promise<Response> {
    return this.manage(ctx, "get_context", DEADLINES.contexts, (ship, s) => ship.getContext(s, contextId, ctx));
  }

  delete(ctx: CallContext, contextId: string): Promise<Response> {
    return this.manage(ctx, "delete_context", DEADLINES.contexts, (ship, s) => ship.deleteContext(s, contextId, ctx));
  }

  restart(ctx: CallContext, contextId: string): Promise<Response> {
    return this.manage(ctx, "restart_context", DEADLINES.contextStart, (ship, s) => ship.restartContext(s, contextId, ctx));
  }

  /** Runs code in a context (`context_id`), or in the default context of `language` (default python). */
  exec(ctx: CallContext, body: CodeExecRequest, stream = false): Promise<Response> {
    // A context id alone: its language is the Ship's to know; the profile must have some.
    assertEnvVars(body.env, "env");
    assertEnvVars(body.base_env, "base_env");
    const language = body.language ?? (body.context_id === undefined ? "python" : undefined);
    return this.router.call(ctx, {
      capability: "code",
      ...(language ? { language } : {}),
      operation: stream ? "code_exec_stream" : "code_exec",
      coverMs: execDeadlineMs(body.timeout),
      replayable: true,
      opens: stream,
      run: (ship, s) => ship.execCode(s, body, { ...ctx, stream }),
    });
  }

  private manage(ctx: CallContext, operation: string, coverMs: number, run: CallPlan<Response>["run"]): Promise<Response> {
    return this.router.call(ctx, { capability: "code", operation, coverMs, replayable: true, run });
  }
}
