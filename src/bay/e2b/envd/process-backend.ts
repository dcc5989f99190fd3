/**
 * What envd's Process service needs from a sandbox: start a process, follow its
 * output to its end, list, signal. Every E2B command is a Bay background process
 * (so it has a pid, survives its client and can be reattached to); this backend
 * uses Bay's background processes as they are on main and follows a process by
 * reading its kept output again until it ends.
 */
import type { CallContext } from "../../domain/capability-router.ts";
import type { SandboxExec } from "../../domain/sandbox-exec.ts";
import { BayError } from "../../errors.ts";

export interface ProcessSpec {
  argv: string[];
  cwd?: string;
  env: Record<string, string>;
  stdin: boolean;
}

export interface ProcessSummary {
  processId: string;
  pid: number;
  argv: string[];
  running: boolean;
}

export type ProcessOutput =
  | { kind: "stdout" | "stderr"; data: Uint8Array }
  | { kind: "exit"; exitCode: number; signal: string | null; status: string };

export interface ProcessBackend {
  /** Whether stdin can be written and closed (envd 0.3.0 / 0.5.2 features). */
  readonly supportsStdin: boolean;
  start(ctx: CallContext, spec: ProcessSpec): Promise<ProcessSummary>;
  /** The process's output from its start, then its exit; ends when the process has. */
  follow(ctx: CallContext, processId: string, signal: AbortSignal): AsyncIterable<ProcessOutput>;
  list(ctx: CallContext): Promise<ProcessSummary[]>;
  kill(ctx: CallContext, processId: string): Promise<void>;
  writeStdin(ctx: CallContext, processId: string, data: Uint8Array, eof: boolean): Promise<void>;
}

/** POSIX single quotes around every argument: the one format `parseArgv` reads back. */
export function quoteArgv(argv: string[]): string {
  return argv.map((a) => `'${a.replaceAll("'", `'"'"'`)}'`).join(" ");
}

/** The argv of a command `quoteArgv` wrote; anything else is one opaque command for `bash -c`. */
export function parseArgv(command: string): string[] {
  const out: string[] = [];
  const re = /'((?:[^']|'"'"')*)'(?: |$)/y;
  let at = 0;
  while (at < command.length) {
    re.lastIndex = at;
    const m = re.exec(command);
    if (!m) return ["/bin/bash", "-c", command];
    out.push(m[1]!.replaceAll(`'"'"'`, "'"));
    at = re.lastIndex;
  }
  return out;
}

interface ShipProcess {
  process_id: string;
  pid: number;
  command: string;
  status: "running" | "exited" | "killed";
  exit_code: number | null;
  signal?: string | null;
  output?: string;
  error?: string;
}

const POLL_MS = 100;

/** The backend over Bay's background processes as main has them (start, read whole output, kill). */
export class PollingProcessBackend implements ProcessBackend {
  readonly supportsStdin = false;
  constructor(private readonly exec: SandboxExec) {}

  async start(ctx: CallContext, spec: ProcessSpec): Promise<ProcessSummary> {
    if (spec.stdin) throw new BayError("not_implemented", "stdin for commands needs Bay's interactive processes");
    const res = await this.exec.shell(ctx, {
      command: quoteArgv(spec.argv),
      timeout: 300,
      background: true,
      env: spec.env,
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
    });
    const { process_id } = (await res.json()) as { process_id: string };
    const p = await this.get(ctx, process_id);
    return { processId: process_id, pid: p.pid, argv: spec.argv, running: p.status === "running" };
  }

  async *follow(ctx: CallContext, processId: string, signal: AbortSignal): AsyncIterable<ProcessOutput> {
    const enc = new TextEncoder();
    let outAt = 0;
    let errAt = 0;
    while (!signal.aborted) {
      const p = await this.get(ctx, processId);
      const out = p.output ?? "";
      const err = p.error ?? "";
      if (out.length > outAt) yield { kind: "stdout", data: enc.encode(out.slice(outAt)) };
      if (err.length > errAt) yield { kind: "stderr", data: enc.encode(err.slice(errAt)) };
      outAt = Math.max(outAt, out.length);
      errAt = Math.max(errAt, err.length);
      if (p.status !== "running") {
        yield {
          kind: "exit",
          exitCode: p.exit_code ?? -1,
          signal: p.signal ?? (p.status === "killed" ? "SIGKILL" : null),
          status: p.status,
        };
        return;
      }
      await Bun.sleep(POLL_MS);
    }
  }

  async list(ctx: CallContext): Promise<ProcessSummary[]> {
    const body = (await (await this.exec.listProcesses(ctx)).json()) as { items?: ShipProcess[]; processes?: ShipProcess[] };
    const items = body.items ?? body.processes ?? [];
    return items.map((p) => ({ processId: p.process_id, pid: p.pid, argv: parseArgv(p.command), running: p.status === "running" }));
  }

  async kill(ctx: CallContext, processId: string): Promise<void> {
    await (await this.exec.killProcess(ctx, processId)).body?.cancel();
  }

  writeStdin(): Promise<void> {
    return Promise.reject(new BayError("not_implemented", "stdin for commands needs Bay's interactive processes"));
  }

  private async get(ctx: CallContext, processId: string): Promise<ShipProcess> {
    return (await (await this.exec.getProcess(ctx, processId)).json()) as ShipProcess;
  }
}
