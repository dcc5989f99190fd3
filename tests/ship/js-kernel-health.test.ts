/**
 * A JS cell that breaks a built-in the kernel's own code uses (health.ts): the kernel
 * answers, notices with its self-test and exits (70) with the reason, so Ship starts a
 * fresh one, instead of failing every later cell or never answering again. A cell that
 * wraps or polyfills a built-in, or fails for its own reasons, keeps its context.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { JsKernelProcess } from "../../src/ship/kernel/js/js-kernel-process.ts";
import { BROKEN_KERNEL_EXIT } from "../../src/ship/kernel/js/health.ts";
import { endKernels, run, startKernel } from "./support/js-kernel.ts";

afterAll(endKernels);

/** Runs `code`; null when the kernel died before it answered. */
async function tryRun(k: JsKernelProcess, code: string) {
  try {
    return (await run(k, code)).result;
  } catch {
    return null;
  }
}

async function exitOf(k: JsKernelProcess): Promise<string> {
  await Promise.race([k.exited, Bun.sleep(10_000)]);
  return k.describeExit();
}

describe("js kernel: a cell that breaks a built-in the kernel uses", () => {
  // Each of these made every later cell fail (or never be answered), with no restart.
  const breakers = [
    "Array.prototype.push = null",
    "Array.prototype.map = null",
    "String.prototype.split = null",
    "String.prototype.slice = null",
    "String.prototype.slice = function () { return '' }",
    "Map.prototype.set = null",
    "Object.entries = null",
    "Object.keys = null",
    "Object.hasOwn = null",
    "Function.prototype.call = null",
    "Bun.inspect = null",
    "Buffer.from = null",
    // Not reached by the self-test: the kernel's own code fails on two requests in a row.
    "Set.prototype.delete = null",
  ];
  for (const breaker of breakers) {
    test(breaker, async () => {
      const k = await startKernel();
      await run(k, "let kept = 1");
      // The breaking cell and the next ones are answered (or the kernel is already gone) ...
      const answers = [await tryRun(k, `${breaker}\n'broke'`)];
      for (let i = 0; i < 2 && k.isAlive; i++) answers.push(await tryRun(k, "kept + 1"));
      // ... and then it exits with the reason, instead of serving a broken context.
      expect(await exitOf(k)).toContain(`exit code ${BROKEN_KERNEL_EXIT}`);
      expect(k.describeExit()).toContain("the kernel's own code no longer works");
      expect(k.isAlive).toBe(false);
      // Whatever it answered before it went was an answer, not a hang.
      for (const a of answers) if (a) expect(typeof a.success).toBe("boolean");
    });
  }

  test("the next cell after the restart Ship makes runs in a fresh kernel", async () => {
    // Ship's side (SupervisedKernel) is checked end to end in tests/e2e/js-kernel-health.test.ts;
    // here the kernel itself: a broken one exits even when the cell that broke it succeeded.
    const k = await startKernel();
    expect((await run(k, "String.prototype.split = null; 7")).result).toMatchObject({ success: true });
    await tryRun(k, "8");
    expect(await exitOf(k)).toContain(`exit code ${BROKEN_KERNEL_EXIT}`);
  });
});

/** `run`, failing the test instead of waiting when the kernel does not answer in 10 s. */
async function answered(k: JsKernelProcess, code: string) {
  const late = Bun.sleep(10_000).then(() => Promise.reject(new Error(`no answer in 10 s to: ${code}`)));
  return (await Promise.race([run(k, code), late])).result;
}

describe("js kernel: a cell that breaks the promise machinery", () => {
  // Each of these held the cell until its timeout and then 10 s or 120 s more, and lost the context.
  const breakers = [
    "Promise.prototype.then = function () {}",
    "Promise.prototype.then = null",
    "Promise.prototype.catch = null",
    "Promise.resolve = () => new Promise(() => {})",
    "Promise.race = null",
    "Object.defineProperty(Promise, Symbol.species, { value: function () {} })",
    // What the queue and the request reader use: the kernel took its own copies or needs none.
    "Array.prototype.shift = null",
    "Array.prototype.shift = function () { return undefined }",
    "TextDecoder.prototype.decode = () => ''",
    "const io = String.prototype.indexOf; String.prototype.indexOf = function (s, ...a) { return s === '\\n' ? -1 : io.call(this, s, ...a) }",
    "const R = Object.getPrototypeOf(new ReadableStream().getReader()); R.read = () => new Promise(() => {})",
    "String.prototype.indexOf = null",
  ];
  for (const breaker of breakers) {
    test(`${breaker}: answered, and the cells after it run with their state (top-level await included)`, async () => {
      const k = await startKernel();
      await run(k, "let kept = 41");
      expect(await answered(k, `${breaker}\n'broke'`)).toMatchObject({ success: true, output: '"broke"\n' });
      expect(await answered(k, "await new Promise((r) => setTimeout(() => r(1), 5)) + kept")).toMatchObject({
        success: true,
        output: "42\n",
      });
      expect(await answered(k, "await Bun.sleep(1)\nnull.x")).toMatchObject({ success: false });
      expect(await answered(k, "display({ 'text/plain': 'shown' }, { raw: true }); kept")).toMatchObject({ success: true, output: "41\n" });
      expect(k.isAlive).toBe(true);
    });
  }

  for (const [breaker, reason] of [
    ["Object.prototype.then = function () {}", "Object.prototype.then"],
    ["Promise.prototype.constructor = function () {}; Promise.prototype.then = function () {}", "Promise.prototype.constructor"],
    ["delete Promise.prototype.constructor", "Promise.prototype.constructor"],
    // A timer `unref` that clears the kernel's poller would have hidden the trap.
    [
      "Object.getPrototypeOf(setInterval(() => {}, 1e9)).unref = function () { clearInterval(this) }\nawait Bun.sleep(50)\nObject.prototype.then = function () {}",
      "Object.prototype.then",
    ],
  ] as const) {
    test(`${breaker}: await itself is broken; the kernel exits at once with the reason`, async () => {
      const k = await startKernel();
      expect(await tryRun(k, `${breaker}\n1`)).toBeNull();
      expect(await exitOf(k)).toContain(`exit code ${BROKEN_KERNEL_EXIT}`);
      expect(k.describeExit()).toContain(reason);
    });
  }
});

describe("js kernel: a cell value that is a thenable but not a promise", () => {
  // `Array.prototype.then = …` made every later cell whose value is an array wait for its timeout:
  // the cell's wrapper adopted the value as a thenable. Only a genuine promise is awaited.
  test("Array.prototype.then defined: array values are answered as arrays, promises still awaited", async () => {
    const k = await startKernel();
    expect(await answered(k, "Array.prototype.then = function () {}\n'set'")).toMatchObject({ success: true, output: '"set"\n' });
    expect(await answered(k, "[1, 2, 3]")).toMatchObject({ success: true, output: "[ 1, 2, 3 ]\n" });
    expect(await answered(k, "Promise.resolve(4)")).toMatchObject({ success: true, output: "4\n" });
    expect(await answered(k, "new Promise((r) => setTimeout(() => r(5), 5))")).toMatchObject({ success: true, output: "5\n" });
    expect(await answered(k, "delete Array.prototype.then; [6]")).toMatchObject({ success: true, output: "[ 6 ]\n" });
    expect(k.isAlive).toBe(true);
  });

  test("an object with a then that never calls back is a value, not a wait", async () => {
    const k = await startKernel();
    const r = await answered(k, "({ then() {}, name: 'thenable' })");
    expect(r).toMatchObject({ success: true });
    expect(r.output).toContain("thenable");
    // A rejected promise as the value is still the cell's error.
    expect(await answered(k, "Promise.reject(new Error('no'))")).toMatchObject({ success: false });
  });

  test("an anonymous function or class as the value keeps no name from the kernel's own wrapping", async () => {
    const k = await startKernel();
    for (const code of ["x => x", "(function () {})", "(class {})", "(async () => 1)"]) {
      const r = await answered(k, code);
      expect(r).toMatchObject({ success: true });
      expect(r.output).not.toContain("value");
    }
    expect((await answered(k, "(function named() {})")).output).toContain("named");
  });
});

describe("js kernel: cells that wrap built-ins or fail on their own keep their context", () => {
  test("failing cells, wrapped built-ins, a custom Error.prepareStackTrace and a zone-like then", async () => {
    const k = await startKernel();
    await run(k, "let kept = 41");
    const cells = [
      "null.x",
      "throw new Error('mine')",
      "await Promise.reject(new TypeError('rejected'))",
      "const push = Array.prototype.push; Array.prototype.push = function (...a) { return push.apply(this, a) }; null.y",
      "const then = Promise.prototype.then; Promise.prototype.then = function (a, b) { return then.call(this, a, b) }; undefinedName",
      "Error.prepareStackTrace = (e, frames) => `${e.name}: ${e.message}\\n    at patched`; null.z",
      "const stringify = JSON.stringify; JSON.stringify = (...a) => stringify(...a); syntax error here",
      "Error.stackTraceLimit = 0; null.w",
      // A cell's formatter or getter that throws costs that part of the error text, not the kernel.
      "Error.prepareStackTrace = () => { throw new Error('formatter bug') }; null.s",
      "Error.prepareStackTrace = undefined; const e = new Error('x'); Object.defineProperty(e, 'stack', { get() { throw new Error('gotcha') } }); throw e",
      "Object.getPrototypeOf(setInterval(() => {}, 1e9)).unref = null; null.t",
      // A custom inspector right for the cell's own maps, wrong for any other: the self-test never runs it.
      "Map.prototype[Symbol.for('nodejs.util.inspect.custom')] = function () { return 'Map<' + [...this.keys()].map((k) => k.toUpperCase()).join(', ') + '>' }; null.r",
      // Built-ins the kernel took its own copies of before any cell ran.
      "JSON.stringify = null; JSON.parse = null; null.v",
      "globalThis.Promise = function () {}; setImmediate = null; process.exit = () => {}; null.u",
    ];
    for (const code of cells) {
      const r = (await run(k, code)).result;
      expect(r.success).toBe(false);
      expect(k.isAlive).toBe(true);
    }
    expect((await run(k, "kept + 1")).result).toMatchObject({ success: true, output: "42\n" });
    expect(k.isAlive).toBe(true);
  });
});
