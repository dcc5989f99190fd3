/**
 * Driving real `ship js-kernel` processes (from source, the same main.ts the image
 * compiles) through JsKernelProcess, for the js-kernel*.test.ts files.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JsCellEvent, type JsCellResult, JsKernelProcess } from "../../../src/ship/kernel/js/js-kernel-process.ts";

export interface Run {
  result: JsCellResult;
  events: JsCellEvent[];
}

const kernels: JsKernelProcess[] = [];
const dirs: string[] = [];

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export async function startKernel(opts: { cwd?: string; maxOutputBytes?: number; language?: "javascript" | "typescript" } = {}) {
  const kernel = new JsKernelProcess({
    cwd: opts.cwd ?? tempDir("js-kernel-"),
    maxOutputBytes: opts.maxOutputBytes ?? 1024 * 1024,
    language: opts.language,
  });
  kernels.push(kernel);
  await kernel.ready;
  return kernel;
}

/** Runs a cell; `whenSeen` interrupts the cell once a stream event contains that text. */
export async function run(kernel: JsKernelProcess, code: string, whenSeen?: string): Promise<Run> {
  const events: JsCellEvent[] = [];
  let interrupted = false;
  const pending = kernel.send(code, (event) => {
    events.push(event);
    if (whenSeen && !interrupted && event.event === "stream" && event.text.includes(whenSeen)) {
      interrupted = true;
      kernel.interrupt();
    }
  });
  const result = await Promise.race([pending, kernel.exited.then(() => Promise.reject(new Error(kernel.describeExit())))]);
  return { result, events };
}

/** A kernel a test made itself, ended with the others. */
export function track<K extends JsKernelProcess>(kernel: K): K {
  kernels.push(kernel);
  return kernel;
}

/** Kills every kernel started here and removes their directories (each file's afterAll). */
export function endKernels(): void {
  for (const kernel of kernels.splice(0)) kernel.kill();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
