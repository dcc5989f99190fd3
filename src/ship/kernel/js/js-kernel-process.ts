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
  /** How long an interrupt waits for the kernel's `interrupted` before SIGINT; default SIGNAL_AFTER_MS. */
  signalAfterMs?: number;
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

/** How long the kernel has to acknowledge an interrupt request on stdin before SIGINT is sent (it is busy in user code). */
export const SIGNAL_AFTER_MS = 50;
/** How often SIGINT is sent again while the kernel has not acknowledged (one landing as a guarded call returns is lost). */
export const SIGNAL_AGAIN_MS = 250;

/** One JS/TS kernel process (`ship js-kernel`): one code context. */
export class JsKernelProcess extends KernelProcess {
  private readonly signalAfterMs: number;

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
    this.signalAfterMs = opts.signalAfterMs ?? SIGNAL_AFTER_MS;
  }

  /**
   * The request on stdin naming the running cell first: a kernel whose event loop is
   * free (the cell awaits) ends that cell at once, and no signal is sent. Only if it has
   * not said `interrupted` within signalAfterMs (user code holds its thread: a loop)
   * SIGINT follows, again every SIGNAL_AGAIN_MS until it does. Never SIGINT first: Bun's
   * breakOnSigint watcher can keep a signal that lands while a guarded call returns and
   * deliver it to the next guarded call, which would stop a later cell.
   */
  override interrupt(): void {
    const cell = this.runningCell();
    if (cell === undefined) return;
    this.askInterrupt();
    this.writeLine({ interrupt: cell } satisfies KernelInterruptRequest);
    // A dead kernel keeps its waiters: without isAlive the chain would outlive it, holding it in memory.
    const pending = () => this.isAlive && this.runningCell() === cell && !this.runningCellAcknowledged;
    const signal = (after: number) => {
      const timer = setTimeout(() => {
        if (!pending()) return;
        super.interrupt();
        signal(SIGNAL_AGAIN_MS);
      }, after);
      timer.unref?.();
    };
    signal(this.signalAfterMs);
  }
}
