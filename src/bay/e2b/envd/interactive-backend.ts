/**
 * The process backend over Bay's interactive processes: a command is a
 * background process (stdin a pipe when asked), followed through its output
 * stream from offset 0 (so a reattach replays what the ring still holds), fed
 * through its stdin and ended by signals. Every call goes through Bay's
 * CapabilityRouter like the /v1 routes.
 */
import type { CallContext } from "../../domain/capability-router.ts";
import type { SandboxExec } from "../../domain/sandbox-exec.ts";
import type { SandboxProcesses } from "../../domain/sandbox-processes.ts";
import { BayError } from "../../errors.ts";
import { parseArgv, type ProcessBackend, type ProcessOutput, type ProcessSpec, type ProcessSummary, quoteArgv } from "./process-backend.ts";
import { readEvents } from "./sse-events.ts";

interface ShipProcess {
  process_id: string;
  pid: number;
  command: string;
  status: "running" | "exited" | "killed";
}

export class InteractiveProcessBackend implements ProcessBackend {
  readonly supportsStdin = true;
  constructor(
    private readonly exec: SandboxExec,
    private readonly processes: SandboxProcesses,
  ) {}

  async start(ctx: CallContext, spec: ProcessSpec): Promise<ProcessSummary> {
    const body = {
      command: quoteArgv(spec.argv),
      timeout: 300,
      background: true,
      stdin: spec.stdin,
      env: spec.env,
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
    };
    // The Ship keeps the deadline with the process: it holds across Bay restarts, replicas and stops.
    const res = await this.exec.shell(ctx, body, false, spec.deadlineAt);
    const { process_id } = (await res.json()) as { process_id: string };
    const p = (await (await this.exec.getProcess(ctx, process_id)).json()) as ShipProcess;
    return { processId: process_id, pid: p.pid, argv: spec.argv, running: p.status === "running" };
  }

  async *follow(ctx: CallContext, processId: string, signal: AbortSignal): AsyncIterable<ProcessOutput> {
    const res = await this.processes.output({ ...ctx, signal }, processId, { offset: 0, encoding: "base64", follow: true });
    if (!res.body) throw new BayError("ship_error", "the sandbox runtime answered no output stream");
    for await (const e of readEvents(res.body)) {
      if (e.event === "output") {
        const chunk = e.data as { stream: "stdout" | "stderr"; data: string };
        yield { kind: chunk.stream, data: Buffer.from(chunk.data, "base64") };
      } else if (e.event === "exit") {
        const x = e.data as { status: string; exit_code: number | null; signal: string | null };
        yield { kind: "exit", exitCode: x.exit_code ?? -1, signal: x.signal, status: x.status };
        return;
      } else if (e.event === "error") {
        const err = (e.data as { error?: { code?: string; message?: string } }).error;
        throw new BayError(err?.code === "not_found" ? "not_found" : "ship_error", err?.message ?? "the process's output stream failed");
      }
      // `dropped`: bytes the ring no longer holds; the SDK has no event for them.
    }
    throw new BayError("ship_error", "the process's output stream ended before its exit");
  }

  async list(ctx: CallContext): Promise<ProcessSummary[]> {
    const body = (await (await this.exec.listProcesses(ctx)).json()) as { items: ShipProcess[] };
    return body.items.map((p) => ({ processId: p.process_id, pid: p.pid, argv: parseArgv(p.command), running: p.status === "running" }));
  }

  async kill(ctx: CallContext, processId: string, signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    await (await this.processes.signal(ctx, processId, { signal })).body?.cancel();
  }

  async writeStdin(ctx: CallContext, processId: string, data: Uint8Array, eof: boolean): Promise<void> {
    const body = { data: Buffer.from(data).toString("base64"), encoding: "base64" as const, eof, timeout: 30 };
    await (await this.processes.stdin(ctx, processId, body)).body?.cancel();
  }
}
