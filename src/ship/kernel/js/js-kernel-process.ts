import { join } from "node:path";
import { childEnv } from "../../child-env.ts";
import { type CellEvent, type CellResult, KernelProcess } from "../kernel-process.ts";
import type { KernelInterruptRequest } from "../protocol.ts";

/** The end of a cell, as the kernel reports it. */
export type JsCellResult = CellResult;
/** Output of a cell while it runs. */
export type JsCellEvent = CellEvent;

/** How to start a JS kernel process. */
export interface JsKernelProcessOptions {
  /** The context's working directory: packages and relative imports resolve from it. */
  cwd: string;
  /** Cap on one cell's output (SHIP_MAX_OUTPUT_BYTES in the kernel). */
  maxOutputBytes: number;
  language?: "javascript" | "typescript";
  /** Argv that starts the kernel; default jsKernelCommand(). */
  command?: string[];
  /** Extra environment for the kernel (on top of childEnv()). */
  env?: Record<string, string | undefined>;
}

/**
 * The argv of a JS kernel: inside the compiled `ship` binary, the same executable with the
 * `js-kernel` sub-command (no second runtime in the image); from source (tests, `bun
 * src/ship/main.ts`), Ship's main.ts run by the same bun with that sub-command.
 */
export function jsKernelCommand(): string[] {
  if (Bun.main.startsWith("/$bunfs/")) return [process.execPath, "js-kernel"];
  return [process.execPath, join(import.meta.dir, "..", "..", "main.ts"), "js-kernel"];
}

/** One JS/TS kernel process (`ship js-kernel`): one code context. */
/** How long a SIGINT has to be acknowledged before the stdin follow-up is sent. */
export const FOLLOW_UP_MS = 250;

export class JsKernelProcess extends KernelProcess {
  constructor(opts: JsKernelProcessOptions) {
    const env = childEnv({ ...opts.env, SHIP_MAX_OUTPUT_BYTES: String(opts.maxOutputBytes) });
    // With it, the `ship` binary would act as the bun CLI and look for a script named js-kernel.
    delete env.BUN_BE_BUN;
    super({
      command: [...(opts.command ?? jsKernelCommand()), ...(opts.language ? ["--language", opts.language] : [])],
      cwd: opts.cwd,
      env,
      maxOutputBytes: opts.maxOutputBytes,
      label: "js kernel",
    });
  }

  /**
   * SIGINT, then, if the kernel has not said `interrupted` within FOLLOW_UP_MS, the
   * same request on stdin naming the running cell: a SIGINT that lands while a
   * guarded call returns is lost, and the cell would wait for it forever. Not at
   * once: a follow-up that ends the cell before its SIGINT is handled (signals and
   * stdin are not ordered, and a loaded host delays signals) leaves that SIGINT to
   * land on the next cell.
   */
  override interrupt(): void {
    const sentAt = Date.now();
    super.interrupt();
    const cell = this.runningCell();
    if (cell === undefined) return;
    const followUp = setTimeout(() => {
      if (this.runningCell() === cell && this.interruptAckedAt < sentAt)
        this.writeLine({ interrupt: cell } satisfies KernelInterruptRequest);
    }, FOLLOW_UP_MS);
    followUp.unref?.();
  }
}
