/**
 * The globals the kernel's own code calls, taken when the kernel loads, before any cell
 * runs: a cell that replaces them (a Promise polyfill such as bluebird assigned to
 * `globalThis.Promise`, a stubbed `setImmediate`) changes its own code, not the kernel's.
 */
import { types } from "node:util";

export const KernelPromise = Promise;
/** A brand check (the internal slot, not `then` nor the prototype chain): whether a value is a genuine promise. */
export const kernelIsPromise: (value: unknown) => value is Promise<unknown> = types.isPromise;
export const kernelSetImmediate = setImmediate;
const kernelSetInterval = setInterval;
export const kernelClearInterval = clearInterval;
export const kernelQueueMicrotask = queueMicrotask;
export const kernelStringify = JSON.stringify;
export const kernelParse = JSON.parse;
export const kernelHasOwn = Object.hasOwn;
export const ObjectPrototype = Object.prototype;
export const kernelOwnProperty = Object.getOwnPropertyDescriptor;
/** The process's own exit, as it was before any cell: a cell's `process.exit = () => {}` cannot keep the kernel alive. */
export const kernelExit: (code: number) => never = process.exit.bind(process);
/** Exit without running 'exit' listeners: for a kernel whose own code no longer works (listeners are the cells'). */
export const kernelExitNow: (code: number) => never = (
  (process as unknown as { reallyExit?: (code: number) => never }).reallyExit ?? process.exit
).bind(process);

/** Calls `fn` with `self` as this, through the Reflect.apply of before any cell (Function.prototype.call may be replaced). */
export const kernelApply = Reflect.apply;
/** What reading the request pipe calls, taken before any cell (channel.ts). */
export const stringIndexOf = String.prototype.indexOf;
export const stringSlice = String.prototype.slice;
export const textDecode = TextDecoder.prototype.decode;
export const readerRead = Object.getPrototypeOf(new ReadableStream().getReader()).read as ReadableStreamDefaultReader<Uint8Array>["read"];
const probeTimer = setInterval(() => {}, 1 << 30);
const timerUnref = Object.getPrototypeOf(probeTimer).unref as (this: ReturnType<typeof setInterval>) => unknown;
clearInterval(probeTimer);

/** An interval that does not keep the process alive, through the timer methods of before any cell (a cell's `unref` could clear it). */
export function kernelBackgroundInterval(fn: () => void, ms: number): ReturnType<typeof setInterval> {
  const timer = kernelSetInterval(fn, ms);
  kernelApply(timerUnref, timer, []);
  return timer;
}
