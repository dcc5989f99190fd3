/**
 * What envd's Process service needs from a sandbox: start a process, follow its
 * output to its end, list, signal, write its stdin. Every E2B command is a Bay
 * background process, so it has a pid, survives its client and can be
 * reattached to (interactive-backend.ts implements it).
 */
import type { CallContext } from "../../domain/capability-router.ts";

export interface ProcessSpec {
  argv: string[];
  cwd?: string;
  env: Record<string, string>;
  stdin: boolean;
  /** When it is killed, followed or not (epoch ms: the call's deadline, envd's procCtx); absent: no limit. */
  deadlineAt?: number;
}

export interface ProcessSummary {
  processId: string;
  pid: number;
  argv: string[];
  running: boolean;
}

export type ProcessOutput =
  | { kind: "stdout" | "stderr" | "pty"; data: Uint8Array }
  | { kind: "exit"; exitCode: number; signal: string | null; status: string };

export interface ProcessBackend {
  /** Whether stdin can be written and closed (envd 0.3.0 / 0.5.2 features). */
  readonly supportsStdin: boolean;
  start(ctx: CallContext, spec: ProcessSpec): Promise<ProcessSummary>;
  /** The process's output from its start, then its exit; ends when the process has. */
  follow(ctx: CallContext, processId: string, signal: AbortSignal): AsyncIterable<ProcessOutput>;
  list(ctx: CallContext): Promise<ProcessSummary[]>;
  kill(ctx: CallContext, processId: string, signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
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
