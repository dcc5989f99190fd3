import { type PythonProcessOptions, startPythonProcess } from "./python-process.ts";
import { SupervisedKernel } from "./supervised-kernel.ts";

export { type ExecResult, type KernelState, MAX_QUEUED_EXECS } from "./supervised-kernel.ts";

/** A persistent IPython kernel (driver.py) under supervision: one Python code context. */
export class PythonKernel extends SupervisedKernel {
  constructor(opts: PythonProcessOptions & { maxQueuedExecs?: number; cwdPath?: string }) {
    super({
      spawn: () => startPythonProcess(opts),
      label: "python",
      maxQueuedExecs: opts.maxQueuedExecs,
      cwd: { absolute: opts.cwd ?? opts.workspace, relative: opts.cwdPath ?? "." },
    });
  }
}
