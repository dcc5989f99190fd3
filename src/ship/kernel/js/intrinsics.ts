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
