/**
 * The globals the kernel's own code calls, taken when the kernel loads, before any cell
 * runs: a cell that replaces them (a Promise polyfill such as bluebird assigned to
 * `globalThis.Promise`, a stubbed `setImmediate`) changes its own code, not the kernel's.
 */
export const KernelPromise = Promise;
export const kernelSetImmediate = setImmediate;
export const kernelSetInterval = setInterval;
export const kernelClearInterval = clearInterval;
export const kernelQueueMicrotask = queueMicrotask;
export const kernelStringify = JSON.stringify;
/** `fn.call` taken now: the result calls `fn` even once a cell replaced `Function.prototype.call`. */
const uncurryThis = Function.prototype.bind.bind(Function.prototype.call) as <A extends unknown[], R>(
  fn: (...args: A) => R,
) => (self: unknown, ...args: A) => R;
/** `Promise.prototype.then` as the kernel loaded it (a cell may replace it, or break it). */
export const kernelThen = uncurryThis(Promise.prototype.then) as <T, R1 = T, R2 = never>(
  promise: Promise<T>,
  onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
  onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
) => Promise<R1 | R2>;
/** The first of two promises to settle, without `Promise.race` (which calls each `then` and iterates an array). */
export const kernelRace = <A, B>(a: Promise<A>, b: Promise<B>): Promise<A | B> =>
  new KernelPromise<A | B>((resolve, reject) => {
    kernelThen(a, resolve, reject);
    kernelThen(b, resolve, reject);
  });
export const kernelNow = Date.now;
export const kernelParse = JSON.parse;
export const hasOwn = Object.hasOwn;
export const ObjectPrototype = Object.prototype;
export const stringTrim = uncurryThis(String.prototype.trim);
export const stringSlice = uncurryThis(String.prototype.slice) as (s: string, start: number, end?: number) => string;
export const stringIndexOf = uncurryThis(String.prototype.indexOf) as (s: string, search: string) => number;
export const kernelExit = process.exit.bind(process);
