/**
 * envd's Process service on Bay. Start runs the command as a Bay background
 * process and streams start → data… → end, with keepalives while it is quiet;
 * the stream always ends with an end event or an error (the process ended, the
 * sandbox went away, or the call's deadline passed, which kills a process it
 * started, as envd does). A client that goes away leaves the process running:
 * Connect reattaches by pid and replays its kept output.
 */
import { create, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { BayError } from "../../errors.ts";
import {
  ConnectResponseSchema,
  ListResponseSchema,
  type Process,
  type ProcessEventSchema,
  type ProcessSelector,
  SendInputResponseSchema,
  SendSignalResponseSchema,
  StartResponseSchema,
  CloseStdinResponseSchema,
  Signal,
  UpdateResponseSchema,
} from "../generated/envd/process/process_pb.ts";
import { assertEnvVars, MERGED_SET_LIMITS } from "../../domain/env-vars.ts";
import { commandCwd } from "../paths.ts";
import type { DataPlaneCall } from "./access.ts";
import type { EnvdCalls } from "./envd-calls.ts";
import { ENVD_KEEPALIVE_MS, KEEPALIVE, streamKeepaliveMs, withKeepalive } from "./keepalive.ts";
import type { ProcessBackend, ProcessOutput } from "./process-backend.ts";
import type { PtySessions } from "./pty-sessions.ts";

export interface ProcessServiceDeps {
  calls: EnvdCalls;
  backend: ProcessBackend;
  /** Sandbox-wide environment (create's envVars), under the request's own. */
  envVars(call: DataPlaneCall): Promise<Record<string, string>>;
  /** Terminals (absent until Bay has them: a pty is then unimplemented). */
  ptys?: PtySessions;
  /** Longest quiet time before a keepalive event. */
  keepaliveMs?: number;
}

export function processService(deps: ProcessServiceDeps): Partial<ServiceImpl<typeof Process>> {
  const { calls, backend } = deps;

  const keepaliveMs = (ctx: HandlerContext) => streamKeepaliveMs(ctx, deps.keepaliveMs ?? ENVD_KEEPALIVE_MS);

  const resolve = async (call: DataPlaneCall, selector: ProcessSelector | undefined) => {
    const sel = selector?.selector;
    if (sel?.case !== "pid") throw new ConnectError("Bay selects processes by pid only", Code.InvalidArgument);
    const procs = await backend.list(call);
    const found = procs.find((p) => p.pid === sel.value && p.running) ?? procs.find((p) => p.pid === sel.value);
    if (!found) throw new ConnectError(`process with pid ${sel.value} not found`, Code.NotFound);
    return found;
  };

  const ptyOf = (call: DataPlaneCall, selector: ProcessSelector | undefined) => {
    const sel = selector?.selector;
    return sel?.case === "pid" ? deps.ptys?.get(call.sandboxId, sel.value) : undefined;
  };

  return {
    async *start(req, ctx) {
      yield* calls.stream(ctx, async function* (call) {
        if (req.pty) {
          if (!deps.ptys) throw new BayError("not_implemented", "terminals (pty) need Bay's interactive processes");
          // Bay's terminal is a login shell (`bash -il`, what the SDKs ask for): the request's command is not used.
          const size = { cols: req.pty.size?.cols ?? 80, rows: req.pty.size?.rows ?? 24 };
          const start = { cwd: commandCwd(req.process?.cwd), env: await withSandboxEnv(deps, call, req.process?.envs) };
          const session = await deps.ptys.open(call, size, deadlineAt(ctx), start);
          yield event(StartResponseSchema, { case: "start", value: { pid: session.pid } });
          yield* relayOutput(StartResponseSchema, session.read(ctx.signal), keepaliveMs(ctx));
          return;
        }
        const cfg = req.process;
        if (!cfg?.cmd) throw new BayError("validation_error", "process.cmd is required");
        const env = await withSandboxEnv(deps, call, cfg.envs);
        const cwd = commandCwd(cfg.cwd);
        const started = await backend.start(call, {
          argv: [cfg.cmd, ...cfg.args],
          env,
          stdin: req.stdin === true,
          ...(cwd ? { cwd } : {}),
          deadlineAt: deadlineAt(ctx),
        });
        yield event(StartResponseSchema, { case: "start", value: { pid: started.pid } });
        yield* relayOutput(StartResponseSchema, backend.follow(call, started.processId, ctx.signal), keepaliveMs(ctx));
      });
    },

    async *connect(req, ctx) {
      yield* calls.stream(ctx, async function* (call) {
        const pty = ptyOf(call, req.process);
        if (pty) {
          yield event(ConnectResponseSchema, { case: "start", value: { pid: pty.pid } });
          yield* relayOutput(ConnectResponseSchema, pty.read(ctx.signal), keepaliveMs(ctx));
          return;
        }
        const p = await resolve(call, req.process);
        yield event(ConnectResponseSchema, { case: "start", value: { pid: p.pid } });
        yield* relayOutput(ConnectResponseSchema, backend.follow(call, p.processId, ctx.signal), keepaliveMs(ctx));
      });
    },

    list: (_req, ctx) =>
      calls.unary(ctx, async (call) => {
        const procs = (await backend.list(call)).filter((p) => p.running);
        const ptys = deps.ptys?.list(call.sandboxId) ?? [];
        return create(ListResponseSchema, {
          processes: [
            ...procs.map((p) => ({ pid: p.pid, config: { cmd: p.argv[0] ?? "", args: p.argv.slice(1), envs: {} } })),
            ...ptys.map((t) => ({ pid: t.pid, config: { cmd: "/bin/bash", args: ["-l"], envs: {} } })),
          ],
        });
      }),

    sendSignal: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        const pty = ptyOf(call, req.process);
        if (pty) pty.hangUp();
        else {
          const p = await resolve(call, req.process);
          await backend.kill(call, p.processId, req.signal === Signal.SIGTERM ? "SIGTERM" : "SIGKILL");
        }
        return create(SendSignalResponseSchema, {});
      }),

    sendInput: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        const input = req.input?.input;
        if (input?.case === "pty") {
          const pty = ptyOf(call, req.process);
          if (!pty) throw new ConnectError("no terminal with that pid", Code.NotFound);
          pty.input(input.value);
        } else if (input?.case === "stdin") {
          const p = await resolve(call, req.process);
          await backend.writeStdin(call, p.processId, input.value, false);
        } else throw new ConnectError("input must be stdin or pty bytes", Code.InvalidArgument);
        return create(SendInputResponseSchema, {});
      }),

    update: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        const pty = ptyOf(call, req.process);
        if (!pty) throw new ConnectError("only a terminal can be updated (its size)", Code.NotFound);
        if (req.pty?.size) pty.resize(req.pty.size.cols, req.pty.size.rows);
        return create(UpdateResponseSchema, {});
      }),

    closeStdin: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        if (ptyOf(call, req.process))
          throw new ConnectError("a terminal has no stdin to close: send Ctrl-D (0x04)", Code.FailedPrecondition);
        const p = await resolve(call, req.process);
        await backend.writeStdin(call, p.processId, new Uint8Array(), true);
        return create(CloseStdinResponseSchema, {});
      }),
  };
}

type EventInit = MessageInitShape<typeof ProcessEventSchema>["event"];
type StreamSchema = typeof StartResponseSchema | typeof ConnectResponseSchema;

function event<S extends StreamSchema>(schema: S, e: EventInit): MessageShape<S> {
  return create(schema as typeof StartResponseSchema, { event: { event: e } }) as MessageShape<S>;
}

/**
 * The call's deadline (Connect-Timeout-Ms, the SDK's timeoutMs) as a moment (epoch
 * ms), for the process it starts, as envd's procCtx: the process (or terminal) is
 * killed when it passes, whether or not its client is still there, however long its
 * sandbox took to start; the stream itself ends with the deadline's own error
 * (EnvdCalls), which comes first. Undefined: no deadline.
 */
function deadlineAt(ctx: HandlerContext): number | undefined {
  const ms = ctx.timeoutMs();
  if (ms === undefined) return undefined;
  // Nothing is started for a call already past its deadline.
  if (ms <= 0) throw new ConnectError("the operation timed out", Code.DeadlineExceeded);
  return Date.now() + ms;
}

/** Output as data events, a keepalive whenever nothing else came for `keepaliveMs`, and the end. */
async function* relayOutput<S extends StreamSchema>(schema: S, output: AsyncIterable<ProcessOutput>, keepaliveMs: number) {
  for await (const o of withKeepalive(output, keepaliveMs)) {
    if (o === KEEPALIVE) {
      yield event(schema, { case: "keepalive", value: {} });
    } else if (o.kind === "exit") {
      yield event(schema, {
        case: "end",
        value: {
          exitCode: o.exitCode,
          exited: o.signal === null,
          status: o.signal ? `signal: ${o.signal.replace(/^SIG/, "").toLowerCase()}` : `exit status ${o.exitCode}`,
          ...(o.signal ? { error: `signal: ${o.signal}` } : {}),
        },
      });
      return;
    } else {
      yield event(schema, { case: "data", value: { output: { case: o.kind, value: o.data } } });
    }
  }
  throw new BayError("ship_error", "the process's output ended before its exit was known");
}

/** A call's own variables over the sandbox's (each set held to half the limit, so the two always fit it). */
async function withSandboxEnv(
  deps: Pick<ProcessServiceDeps, "envVars">,
  call: DataPlaneCall,
  own: Record<string, string> | undefined,
): Promise<Record<string, string>> {
  assertEnvVars(own, "envs", MERGED_SET_LIMITS);
  return { ...(await deps.envVars(call)), ...own };
}
