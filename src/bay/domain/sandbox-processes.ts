/**
 * Background processes of a sandbox beyond start/list/kill: their output read
 * from an offset (a JSON page, or an event stream that follows it), their stdin
 * and signals. One call through the CapabilityRouter each; the Ship's answer is
 * returned unread, so an event stream passes through as it is produced.
 */
import type { ProcessSignalRequest, ProcessStdinRequest } from "../../protocol/ship/index.ts";
import { DEADLINES, execDeadlineMs } from "../runtime/ship-client.ts";
import type { CallContext, CapabilityRouter } from "./capability-router.ts";

export interface OutputQuery {
  offset: number;
  encoding: "text" | "base64";
  /** Follow the output as an event stream until the process ends. */
  follow: boolean;
}

export class SandboxProcesses {
  constructor(private readonly router: CapabilityRouter) {}

  output(ctx: CallContext, processId: string, q: OutputQuery): Promise<Response> {
    return this.router.call(ctx, {
      capability: "shell",
      operation: q.follow ? "process_output_follow" : "process_output",
      coverMs: DEADLINES.processes,
      replayable: true,
      opens: q.follow,
      run: (ship, s) => ship.readProcessOutput(s, processId, q, ctx),
    });
  }

  stdin(ctx: CallContext, processId: string, body: ProcessStdinRequest): Promise<Response> {
    return this.router.call(ctx, {
      capability: "shell",
      operation: "process_stdin",
      coverMs: execDeadlineMs(body.timeout),
      // Sent again only when it never reached the Ship (a new runtime then answers 404).
      replayable: true,
      run: (ship, s) => ship.writeProcessStdin(s, processId, body, ctx),
    });
  }

  signal(ctx: CallContext, processId: string, body: ProcessSignalRequest): Promise<Response> {
    return this.router.call(ctx, {
      capability: "shell",
      operation: "process_signal",
      coverMs: DEADLINES.processes,
      replayable: true,
      run: (ship, s) => ship.signalProcess(s, processId, body, ctx),
    });
  }
}
