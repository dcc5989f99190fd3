/**
 * The JS kernel's self-check (src/ship/kernel/js/health.ts): the probe's answer against
 * the one it gave at start, and the watch that ends a kernel stuck after an interrupt.
 * The kernel-level behaviour (real kernels exiting with 70) is in tests/ship/js-kernel.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { KernelHealth, thenTrap, watchUntilDone } from "../../src/ship/kernel/js/health.ts";

const timers = { set: setInterval, clear: clearInterval };

describe("KernelHealth", () => {
  test("null while the probe answers as it did at start; says why once it differs or throws", () => {
    let answer = "same";
    const health = new KernelHealth(() => {
      if (answer === "throw") throw new TypeError("x.push is not a function");
      return answer;
    });
    expect(health.check()).toBeNull();
    answer = "other";
    expect(health.check()).toContain("different answer");
    answer = "throw";
    expect(health.check()).toBe("its self-test threw TypeError: x.push is not a function");
  });

  test("thenTrap names a then defined on Object.prototype, and only that", () => {
    expect(thenTrap()).toBeNull();
    // The thenable trap on purpose, defined and removed with no await between: nothing
    // else in this process sees it.
    const key = "then";
    Object.defineProperty(Object.prototype, key, { value: undefined, configurable: true });
    let found: string | null;
    try {
      found = thenTrap();
    } finally {
      delete (Object.prototype as Record<string, unknown>)[key];
    }
    expect(found).toContain("Object.prototype.then");
    expect(thenTrap()).toBeNull();
  });
});

describe("watchUntilDone", () => {
  test("calls onStuck once when not done by the limit, and not before", async () => {
    let stuck = 0;
    watchUntilDone(
      () => false,
      () => stuck++,
      timers,
      150,
    );
    await Bun.sleep(40);
    expect(stuck).toBe(0);
    await Bun.sleep(400);
    expect(stuck).toBe(1);
  });

  test("never calls onStuck once done", async () => {
    let done = false;
    let stuck = 0;
    watchUntilDone(
      () => done,
      () => stuck++,
      timers,
      150,
    );
    await Bun.sleep(20);
    done = true;
    await Bun.sleep(400);
    expect(stuck).toBe(0);
  });
});
