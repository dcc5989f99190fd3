/**
 * Whether the JS kernel's own code still works. Cells run in the kernel's realm, so a
 * cell can replace or break a built-in the kernel's code uses (`Array.prototype.push =
 * null`, `String.prototype.split = null`, `Map.prototype.set = null`,
 * `Function.prototype.call = null`, ...). The kernel does not try to guard every one of
 * them; it notices instead. The probe runs the kernel's own paths once on fixed input
 * (transforming a cell, describing an error, rendering a value, encoding an event) and
 * must give the answer it gave when the kernel started, before any cell ran.
 *
 * The kernel runs it after a cell fails and when its own code throws. When the probe
 * fails the kernel exits with a message in its log, Ship starts a fresh one, and the
 * next answer says `kernel_restarted`: a context whose every later cell fails (or never
 * answers) is worse than one whose variables are lost.
 */
import { hasOwn, kernelClearInterval, kernelExit, kernelNow, kernelSetInterval, kernelStringify, ObjectPrototype } from "./intrinsics.ts";
import { bundleOf, CellOutput, describeError } from "./output.ts";
import { transformCell } from "./transform.ts";

/** Exit code of a kernel that stopped because its own code no longer works. */
export const BROKEN_KERNEL_EXIT = 70;

/**
 * After an interrupt was acknowledged, the cell's result is a few event-loop turns away
 * (its promise plumbing, then one synchronous send). A kernel whose loop is free this
 * long after and has not answered is stuck in its own code, e.g. on a `then` a cell broke.
 */
export const STUCK_AFTER_INTERRUPT_MS = 3000;

export class KernelHealth {
  private readonly expected: string;

  /** `probe` is run once now, so construct this before any cell runs. */
  constructor(private readonly probe: () => string) {
    this.expected = probe();
  }

  /** Null while the kernel's code works, else what went wrong. */
  check(): string | null {
    let got: string;
    try {
      got = this.probe();
    } catch (err) {
      return `its self-test threw ${describe(err)}`;
    }
    return got === this.expected ? null : "its self-test gave a different answer than at start";
  }

  /**
   * After cell `id`'s interrupt was acknowledged: exits if it is still not done (its
   * result not sent) after STUCK_AFTER_INTERRUPT_MS of a free event loop.
   */
  watchInterrupted(id: number, isDone: () => boolean, log: (line: string) => void): void {
    watchUntilDone(
      isDone,
      () => {
        this.exitIfBroken(log);
        exitBroken(log, `cell ${id} was interrupted, and the kernel could not finish it`);
      },
      { set: kernelSetInterval, clear: kernelClearInterval },
    );
  }

  /** Logs why and exits when the kernel's code no longer works. */
  exitIfBroken(log: (line: string) => void): void {
    const problem = this.check() ?? thenTrap();
    if (problem) exitBroken(log, problem);
  }
}

/**
 * A `then` on Object.prototype makes every object a thenable: resolving any promise with
 * an object then calls it, so no promise of the kernel's (nor of Bun's own stream
 * reading) settles again. Cheap enough to look for on every poll.
 */
export function thenTrap(): string | null {
  return hasOwn(ObjectPrototype, "then") ? "a cell defined Object.prototype.then, which makes every object a thenable" : null;
}

/** Logs why the kernel's code no longer works, and exits (Ship starts a fresh kernel). */
export function exitBroken(log: (line: string) => void, problem: string): never {
  log(
    `the kernel's own code no longer works (${problem}); a cell replaced or broke a built-in it uses. Exiting, so that a fresh kernel is started`,
  );
  return kernelExit(BROKEN_KERNEL_EXIT);
}

/** The kernel's own paths on fixed input: a cell's transform, an error's text, a value's bundle, output, an event line. */
export function selfTest(transpile: (ts: string) => string, isWrapperFrame: (frame: string) => boolean): string {
  const cell = transformCell("const probe = [1, 'a']\nlet { length } = probe\nawait null\nprobe", transpile);
  const lines = new Map<number, number>();
  lines.set(0, cell.source.split("\n").length);
  const output = new CellOutput(64, () => {});
  output.write("stdout", "probe\n");
  const error = describeError(new TypeError("probe"), isWrapperFrame).split("\n")[0];
  const event = kernelStringify({ bundle: bundleOf({ a: [1, "b"] }), error, lines: lines.get(0), output: output.text() });
  return `${cell.source}\n${Buffer.from(event, "utf8").toString("base64")}`;
}

/**
 * Calls `onStuck` once if `isDone()` is still false `limitMs` after the start, checking
 * on the kernel's own (captured) interval timer; stops looking once it is done.
 */
export function watchUntilDone(
  isDone: () => boolean,
  onStuck: () => void,
  timers: { set: (fn: () => void, ms: number) => ReturnType<typeof setInterval>; clear: (t: ReturnType<typeof setInterval>) => void },
  limitMs = STUCK_AFTER_INTERRUPT_MS,
): void {
  const since = kernelNow();
  const timer = timers.set(
    () => {
      if (isDone()) timers.clear(timer);
      else if (kernelNow() - since >= limitMs) {
        timers.clear(timer);
        onStuck();
      }
    },
    Math.min(250, limitMs),
  );
  timer.unref();
}

function describe(err: unknown): string {
  try {
    return err instanceof Error ? `${err.name}: ${err.message}` : typeof err;
  } catch {
    return "an error that cannot be described";
  }
}
