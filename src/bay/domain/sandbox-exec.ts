/**
 * Python and shell in a sandbox: each method is one call through the
 * CapabilityRouter to the sandbox's Ship, answered with the Ship's response
 * unread (so its body streams on to the client). `stream`: the client asked for
 * the run's event stream (the router keeps the session covered while it is open).
 */
import type { PythonExecRequest, ShellExecRequest } from "../../protocol/ship/index.ts";
import { DEADLINES, execDeadlineMs } from "../runtime/ship-client.ts";
import type { CallContext, CapabilityRouter } from "./capability-router.ts";
import { BayError } from "../errors.ts";
import { assertEnvVars } from "./env-vars.ts";
import { normalizeWorkspacePath } from "./paths.ts";

export class SandboxExec {
  constructor(private readonly router: CapabilityRouter) {}

  /** Runs code in the sandbox's persistent Python kernel (its default Python context). */
  python(ctx: CallContext, body: PythonExecRequest, stream = false): Promise<Response> {
    assertEnvVars(body.env, "env");
    assertEnvVars(body.base_env, "base_env");
    return this.router.call(ctx, {
      capability: "python",
      operation: stream ? "exec_stream" : "exec",
      coverMs: execDeadlineMs(body.timeout),
      replayable: true,
      opens: stream,
      run: (ship, s) => ship.execPython(s, body, { ...ctx, stream }),
    });
  }

  /**
   * Runs a shell command (or starts it in the background); the cwd is checked before
   * any container starts. `deadlineAt` (epoch ms, background only): the process is
   * killed then by its Ship, the time left measured as the start is sent (after any
   * runtime start); past it, nothing is started.
   */
  shell(ctx: CallContext, body: ShellExecRequest, stream = false, deadlineAt?: number): Promise<Response> {
    assertEnvVars(body.env, "env");
    const request = body.cwd === undefined ? body : { ...body, cwd: normalizeWorkspacePath(body.cwd) };
    return this.router.call(ctx, {
      capability: "shell",
      operation: body.background ? "exec_background" : stream ? "exec_stream" : "exec",
      coverMs: execDeadlineMs(body.timeout),
      replayable: true,
      opens: stream,
      run: (ship, s) => ship.execShell(s, untilDeadline(request, deadlineAt), { ...ctx, stream }),
    });
  }

  listProcesses(ctx: CallContext): Promise<Response> {
    return this.processCall(ctx, "list_processes", (ship, s) => ship.listProcesses(s, ctx));
  }

  getProcess(ctx: CallContext, processId: string): Promise<Response> {
    return this.processCall(ctx, "get_process", (ship, s) => ship.getProcess(s, processId, ctx));
  }

  killProcess(ctx: CallContext, processId: string): Promise<Response> {
    return this.processCall(ctx, "kill_process", (ship, s) => ship.killProcess(s, processId, ctx));
  }

  private processCall(ctx: CallContext, operation: string, run: Parameters<CapabilityRouter["call"]>[1]["run"]): Promise<Response> {
    return this.router.call(ctx, {
      capability: "shell",
      operation,
      coverMs: DEADLINES.processes,
      replayable: true,
      run,
    }) as Promise<Response>;
  }
}

/** A background start with the time left until `deadlineAt` as its Ship-kept lifetime. */
function untilDeadline(request: ShellExecRequest, deadlineAt: number | undefined): ShellExecRequest {
  if (deadlineAt === undefined) return request;
  const left = Math.ceil(deadlineAt - Date.now());
  if (left <= 0) throw new BayError("timeout", "the call's deadline passed before its process could start", { details: {} });
  return { ...request, lifetime_ms: left };
}
