/**
 * The interruptible section of the JS kernel. JavaScript runs on one thread, so a tight
 * loop can only be stopped from another: Bun's `node:vm` `breakOnSigint` does it (a
 * watcher thread asks JSC to terminate the running script, which then throws
 * ERR_SCRIPT_EXECUTION_INTERRUPTED at the vm call; the process and its globals
 * survive). That only works while such a vm call is on the stack, so user code is
 * entered through `Guard.run`, which calls it and then drains the microtask queue
 * inside one breakOnSigint call: promise reactions that run in that drain are covered
 * too. Each outermost call costs a thread start and join in Bun (~0.15 ms); nested
 * calls are free.
 */
import { drainMicrotasks } from "bun:jsc";
import vm from "node:vm";

/** How a guarded call ended. */
export type Guarded<T> = { kind: "ok"; value: T } | { kind: "error"; error: unknown } | { kind: "interrupted" };

export class Guard {
  private depth = 0;
  private pending: (() => unknown) | null = null;
  private readonly script: vm.Script;

  /** `entry` is the global expression that calls `invoke()` (the kernel's helper). */
  constructor(entry: string) {
    this.script = new vm.Script(`${entry}()`, { filename: "bay-kernel-guard" });
  }

  /** True while a guarded call is on the stack. */
  get active(): boolean {
    return this.depth > 0;
  }

  /** Runs `fn` (and the microtasks it leaves) so that SIGINT can stop it anywhere. */
  run<T>(fn: () => T): Guarded<T> {
    if (this.depth > 0) {
      // Already inside a guarded call (a drain ran this): the outer call covers it.
      try {
        return { kind: "ok", value: fn() };
      } catch (error) {
        return { kind: "error", error };
      }
    }
    this.pending = fn;
    this.depth++;
    try {
      return { kind: "ok", value: this.script.runInThisContext({ breakOnSigint: true }) as T };
    } catch (error) {
      if ((error as { code?: string } | null)?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") return { kind: "interrupted" };
      return { kind: "error", error };
    } finally {
      this.depth--;
      this.pending = null;
    }
  }

  /** Called by the guard script, inside the breakOnSigint call. */
  invoke(): unknown {
    const fn = this.pending;
    if (!fn) return undefined;
    const value = fn();
    drainMicrotasks();
    return value;
  }
}
