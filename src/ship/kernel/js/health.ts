/**
 * Whether the JS kernel's own code still runs. Cells run in the kernel's realm, so a
 * cell can replace or break a built-in the kernel's code calls (`Array.prototype.push =
 * null`, `String.prototype.split = null`, `Map.prototype.set = null`, `Object.entries =
 * null`, ...). Every later cell would then fail, or fail inside the kernel, with no way
 * back but a restart. The kernel does not guard each built-in. After a cell fails, and
 * when its own code throws, it runs its own paths once on fixed input (selfTest); if
 * that throws, it exits (BROKEN_KERNEL_EXIT) before answering, with the reason in its
 * log: Ship answers that cell with the reason and `kernel_restarted`, and starts a fresh
 * kernel. Two kernel errors in a row count as a throw (kernel.ts), and so does a cell
 * that broke `await` itself (thenTrap).
 *
 * Only a throw counts, never a different answer: a cell that wraps or polyfills a
 * built-in (source-map-support's `Error.prepareStackTrace`, a zone.js-style Promise,
 * a logging `Array.prototype.push`) keeps its context.
 */
import vm from "node:vm";
import { Cell } from "./cell.ts";
import { setEnv } from "./env.ts";
import {
  KernelPromise,
  kernelExitNow,
  kernelHasOwn,
  kernelOwnProperty,
  kernelParse,
  kernelStringify,
  ObjectPrototype,
} from "./intrinsics.ts";
import { bundleOf, clip, describeError } from "./output.ts";
import { transformCell } from "./transform.ts";

/** Exit code of a kernel that stopped because its own code no longer works. */
export const BROKEN_KERNEL_EXIT = 70;

/** What the self-test needs of the kernel: its transpiler and its wrapper-frame test. */
export interface SelfTestTools {
  transpile: (ts: string) => string;
  isWrapperFrame: (frame: string) => boolean;
}

/**
 * The kernel's paths on fixed input, as a request, a cell and its answer take them:
 * reading a request line, the environment, a TypeScript cell's transform and compile,
 * a cell's output and data budget, a value's bundle, an error's text, and an event line.
 */
export function selfTest(tools: SelfTestTools): void {
  const req = kernelParse('{"id":1,"code":"1","env":{}}') as { id: number; code: string; env: object };
  if (!" x ".trim() || !Object.hasOwn(req, "id")) throw new Error("a request line no longer parses");
  setEnv(req.env, new Map());
  const cell = transformCell(
    "const probe: number[] = [1, 2]\nlet { length } = probe\nfunction f() { return length }\nawait null\nprobe.map((n) => n * f())",
    tools.transpile,
  );
  new vm.Script(cell.source, { filename: "bay-kernel-self-test" });
  // As the kernel notes each cell's wrapper line (kernel.ts wrapperLines).
  const wrapperLines = new Map<number, number>();
  wrapperLines.set(1, cell.source.split("\n").length);
  const probe = new Cell(1, 1, 1024, () => {});
  probe.output.write("stdout", "probe\n");
  probe.output.appendResult("[ 2, 4 ]");
  // A primitive: inspecting one runs no hook of the cell's (a custom inspector for its own
  // maps is legit, and may well throw on made-up input); the cell's values run theirs anyway.
  const bundle = bundleOf(42);
  if (bundle instanceof Promise) throw new Error("a plain value's bundle is a promise");
  const data = [{ type: "execute_result", data: probe.budget.take(bundle) }];
  const error = clip(describeError(new TypeError("probe"), tools.isWrapperFrame), 1024).text;
  const line = kernelStringify({ id: 1, event: "result", success: false, output: probe.output.text(), error, data });
  Buffer.from(`${line}\n`, "utf8");
}

/**
 * Why the kernel cannot go on, if a cell broke what `await` relies on (promises.ts):
 * `Object.prototype.then` makes every object a thenable, so no promise resolved with one
 * (the kernel's own) settles again; a replaced `Promise.prototype.constructor` makes
 * `await` of a native promise go through its (replaceable) `then`. No library does
 * either on purpose. Cheap enough to look for on every poll (kernel.ts).
 */
export function thenTrap(): string | null {
  if (kernelHasOwn(ObjectPrototype, "then")) return "a cell defined Object.prototype.then, which makes every object a thenable";
  if (kernelOwnProperty(KernelPromise.prototype, "constructor")?.value !== KernelPromise) {
    return "a cell replaced Promise.prototype.constructor, which makes await go through a promise's then";
  }
  return null;
}

/** Null while `test` runs through, else what it threw (as text). */
export function brokenBy(test: () => void): string | null {
  try {
    test();
    return null;
  } catch (err) {
    return describeThrow(err);
  }
}

/** What was thrown, as text, even when the built-ins describing it are broken too. */
export function describeThrow(err: unknown): string {
  let text: string;
  try {
    text = err instanceof Error ? `${err.name}: ${err.message}` : `a throw of ${typeof err}`;
  } catch {
    return "an error that cannot be described";
  }
  try {
    // One line of the log: Ship shows its last lines as the reason the kernel exited.
    return text.replace(/\s*\n\s*/g, " ");
  } catch {
    return text;
  }
}

/**
 * Exits (BROKEN_KERNEL_EXIT, without the cells' 'exit' listeners) when the kernel's own
 * code no longer runs: `known` says why, else selfTest is run and what it threw says why.
 */
export function exitIfBroken(tools: SelfTestTools, log: (line: string) => void, known: string | null = null): void {
  const why = known ?? brokenBy(() => selfTest(tools));
  if (why === null) return;
  try {
    log(
      `the kernel's own code no longer works (${why}); a cell replaced or broke a built-in it uses. Exiting, so that a fresh kernel is started`,
    );
  } finally {
    kernelExitNow(BROKEN_KERNEL_EXIT);
  }
}
