/**
 * After a timeout interrupt, SupervisedKernel kills a kernel that does not acknowledge
 * it (`interrupted`) within the grace period, but waits for one that did while it builds
 * its result (which carries all the cell's output, tens of MiB at a raised cap), up to
 * an overall bound. A fake process stands in for the kernel: what is under test is the
 * supervisor's decision, which needs no real interpreter (the real kernels' interrupts
 * are tested in tests/ship and tests/e2e).
 */
import { describe, expect, test } from "bun:test";
import type { CellResult, KernelProcess } from "../../src/ship/kernel/kernel-process.ts";
import { SupervisedKernel } from "../../src/ship/kernel/supervised-kernel.ts";
import { ShipError } from "../../src/ship/errors.ts";

/** A kernel that is ready at once and answers an interrupt as `onInterrupt` says. */
class FakeKernel {
  readonly ready = Promise.resolve({ runtime: "fake", language: "fake" });
  readonly exited: Promise<void>;
  isAlive = true;
  killed: string | null = null;
  interrupts = 0;
  runningCellAcknowledged = false;
  private reply: ((r: CellResult) => void) | null = null;
  private exit!: () => void;

  constructor(private readonly onInterrupt: (k: FakeKernel) => void) {
    this.exited = new Promise((resolve) => {
      this.exit = resolve;
    });
  }
  readonly pid = 4242;
  describeExit(): string {
    return `fake kernel was killed: ${this.killed}`;
  }
  send(): Promise<CellResult> {
    this.runningCellAcknowledged = false; // a new cell: nothing said for it yet
    return new Promise((resolve) => {
      this.reply = resolve;
    });
  }
  interrupt(): void {
    this.interrupts++;
    this.onInterrupt(this);
  }
  kill(reason?: string): void {
    this.killed = reason ?? "killed";
    this.isAlive = false;
    this.exit();
  }
  answer(output: string): void {
    this.reply?.({ success: false, output, error: "KeyboardInterrupt", data: [], execution_count: 1, truncated: false });
  }
  /** Says `interrupted`, as a kernel does when it starts stopping the cell. */
  acknowledge(): void {
    this.runningCellAcknowledged = true;
  }
}

function supervise(onInterrupt: (k: FakeKernel) => void, grace: { interruptGraceMs: number; interruptMaxGraceMs: number }) {
  const spawned: FakeKernel[] = [];
  const kernel = new SupervisedKernel({
    spawn: () => {
      const k = new FakeKernel(onInterrupt);
      spawned.push(k);
      return k as unknown as KernelProcess;
    },
    label: "fake",
    ...grace,
  });
  kernel.start();
  return { kernel, spawned };
}

async function timedOut(p: Promise<unknown>): Promise<Record<string, unknown>> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShipError);
  expect((err as ShipError).code).toBe("timeout");
  return (err as ShipError).details;
}

describe("SupervisedKernel: grace after an interrupt", () => {
  test("a kernel that neither acknowledges nor answers is killed after the grace and replaced (kernel_restarted)", async () => {
    const { kernel, spawned } = supervise(() => {}, { interruptGraceMs: 300, interruptMaxGraceMs: 10_000 });
    const details = await timedOut(kernel.exec("loop", 1));
    expect(details.kernel_restarted).toBe(true);
    expect(spawned[0]!.interrupts).toBe(1);
    expect(spawned[0]!.killed).toContain("ignored the interrupt");
  });

  test("a kernel that acknowledged is waited for past the grace while it builds its result, and kept", async () => {
    const { kernel, spawned } = supervise(
      (k) => {
        k.acknowledge();
        setTimeout(() => k.answer("lots of output"), 1000);
      },
      { interruptGraceMs: 300, interruptMaxGraceMs: 10_000 },
    );
    const details = await timedOut(kernel.exec("print forever", 1));
    expect(details).toMatchObject({ kernel_restarted: false, output: "lots of output" });
    expect(spawned).toHaveLength(1);
    expect(spawned[0]!.killed).toBeNull();
  });

  test("a kernel that acknowledged but never answers (user code caught the interrupt) is killed at the overall bound", async () => {
    const { kernel, spawned } = supervise((k) => k.acknowledge(), { interruptGraceMs: 300, interruptMaxGraceMs: 1500 });
    const started = Date.now();
    const details = await timedOut(kernel.exec("except KeyboardInterrupt: loop on", 1));
    expect(details.kernel_restarted).toBe(true);
    expect(spawned[0]!.killed).toContain("ignored the interrupt");
    // Not at the short grace: the acknowledgement bought it the long one.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000 + 1500);
  });

  test("an acknowledgement for an earlier cell does not count for this one", async () => {
    const { kernel, spawned } = supervise(() => {}, { interruptGraceMs: 300, interruptMaxGraceMs: 60_000 });
    spawned[0]!.runningCellAcknowledged = true;
    const details = await timedOut(kernel.exec("loop", 1));
    expect(details.kernel_restarted).toBe(true);
  });

  test("an answer within the grace needs no acknowledgement", async () => {
    const { kernel, spawned } = supervise(
      (k) => {
        setTimeout(() => k.answer("quick"), 50);
      },
      { interruptGraceMs: 2000, interruptMaxGraceMs: 10_000 },
    );
    const details = await timedOut(kernel.exec("sleep", 1));
    expect(details).toMatchObject({ kernel_restarted: false, output: "quick" });
    expect(spawned[0]!.killed).toBeNull();
  });
});
