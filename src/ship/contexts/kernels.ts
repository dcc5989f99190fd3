/** Starting the kernel of a code context, per language. */
import { JsKernelProcess } from "../kernel/js/js-kernel-process.ts";
import { PythonKernel } from "../kernel/python-kernel.ts";
import { SupervisedKernel } from "../kernel/supervised-kernel.ts";
import type { CwdRef } from "../paths.ts";

/** The languages a code context can speak. */
export const LANGUAGES = ["python", "javascript", "typescript"] as const;
export type Language = (typeof LANGUAGES)[number];

/** What every kernel of this Ship shares. */
export interface KernelSettings {
  /** Python executable of the Python driver. */
  python: string;
  /** The workspace root. */
  workspace: string;
  maxOutputBytes: number;
  maxQueuedExecs: number;
}

/** A supervised kernel for `language` with `cwd` as its working directory; not started yet. */
export function kernelFor(language: Language, cwd: CwdRef, s: KernelSettings): SupervisedKernel {
  if (language === "python") {
    return new PythonKernel({
      python: s.python,
      workspace: s.workspace,
      cwd: cwd.absolute,
      cwdPath: cwd.relative,
      maxOutputBytes: s.maxOutputBytes,
      maxQueuedExecs: s.maxQueuedExecs,
    });
  }
  return new SupervisedKernel({
    spawn: () => new JsKernelProcess({ cwd: cwd.absolute, maxOutputBytes: s.maxOutputBytes, language }),
    label: language,
    maxQueuedExecs: s.maxQueuedExecs,
    cwd,
  });
}
