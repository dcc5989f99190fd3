/**
 * What the JS kernel adds to the global scope of user code: the `__bay__` helper that
 * rewritten cells call (transform.ts), `require` and `display`, and guarded timers.
 */
import { createRequire, isBuiltin } from "node:module";
import { isAbsolute, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Guard } from "./guard.ts";
import { KernelPromise } from "./intrinsics.ts";
import { HELPER } from "./transform.ts";

/** What the globals need from the kernel. */
export interface GlobalsHost {
  guard: Guard;
  /** Runs a callback of user code guarded; false if SIGINT stopped it. */
  resume(fn: () => unknown): boolean;
  display(value: unknown, options?: { raw?: boolean }): Promise<void> | undefined;
}

/** Imports a module the way a cell does: packages and relative paths resolve from the working directory. */
function load(specifier: unknown, options?: ImportCallOptions): Promise<unknown> {
  const spec = String(specifier);
  let target = spec;
  if (!(spec.startsWith("node:") || spec.startsWith("bun:") || spec.startsWith("file:") || isBuiltin(spec) || isAbsolute(spec))) {
    // Not from Ship's binary (import() in the kernel would resolve from there).
    target = Bun.resolveSync(spec, process.cwd());
  }
  return options ? import(target, options) : import(target);
}

/** Installs the helper, `require`, `display`, and guarded setTimeout/setInterval. */
export function installGlobals(host: GlobalsHost): void {
  const cwd = process.cwd();
  // Settled inside a guarded drain, the cell goes on there; settled by native I/O, it
  // goes on inside a new guarded call.
  const hop = (value: unknown) =>
    new KernelPromise((resolve, reject) => {
      const go = (fn: () => void) => (host.guard.active ? fn() : host.resume(fn));
      // Through `await`, not `.then`: a cell's Promise.prototype.then must not stop the cells after it (promises.ts).
      void (async () => {
        let v: unknown;
        try {
          v = await value;
        } catch (e) {
          go(() => reject(e));
          return;
        }
        go(() => resolve(v));
      })();
    });
  const helper = {
    g: globalThis,
    hop,
    import: (specifier: unknown, options?: ImportCallOptions) => hop(load(specifier, options)),
    meta: { url: pathToFileURL(join(cwd, "cell")).href, dir: cwd, dirname: cwd, filename: join(cwd, "cell"), main: false },
    guarded: () => host.guard.invoke(),
  };
  // Not writable: a cell declaring the same name cannot break the cells after it.
  Object.defineProperty(globalThis, HELPER, { value: helper, writable: false, enumerable: false, configurable: false });

  const g = globalThis as unknown as Record<string, unknown>;
  g.require = createRequire(join(cwd, "cell.js"));
  g.display = (value: unknown, options?: { raw?: boolean }) => host.display(value, options);

  // Timer callbacks are entry points of user code: guard them.
  type Timer = (...args: unknown[]) => { unref(): void };
  const wrapTimer = (original: Timer, repeats: boolean): Timer => {
    const wrapped = function (this: unknown, callback: unknown, delay?: unknown, ...args: unknown[]) {
      if (typeof callback !== "function") return original.call(this, callback, delay, ...args);
      const handle = original.call(
        this,
        () => {
          const ok = host.resume(() => callback(...args));
          // An interval whose callback had to be interrupted would only loop again.
          if (!ok && repeats) clearInterval(handle as unknown as ReturnType<typeof setInterval>);
        },
        delay,
      );
      return handle;
    };
    Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(original));
    return wrapped;
  };
  g.setTimeout = wrapTimer(setTimeout as unknown as Timer, false);
  g.setInterval = wrapTimer(setInterval as unknown as Timer, true);
}
