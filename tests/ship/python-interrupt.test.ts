/**
 * The Python driver under an interrupt, as Ship drives it (startPythonProcess on the
 * host's python3 with IPython): it says `interrupted` as soon as the cell is being
 * stopped, before a result that may take a while (it carries all the cell's output);
 * code that ignores SIGINT says nothing, so Ship's short grace applies to it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CellEvent, KernelProcess } from "../../src/ship/kernel/kernel-process.ts";
import { startPythonProcess } from "../../src/ship/kernel/python-process.ts";

const PYTHON = process.env.SHIP_TEST_PYTHON ?? "/usr/bin/python3";
let workspace = "";
let kernel: KernelProcess;

beforeAll(async () => {
  const probe = Bun.spawnSync([PYTHON, "-c", "import IPython"], { stderr: "pipe" });
  if (probe.exitCode !== 0)
    throw new Error(`${PYTHON} cannot import IPython: apt-get install -y python3-ipython (or set SHIP_TEST_PYTHON)`);
  workspace = mkdtempSync(join(tmpdir(), "ship-py-interrupt-"));
  kernel = startPythonProcess({ python: PYTHON, workspace, maxOutputBytes: 64 * 1024 * 1024 });
  await kernel.ready;
});

afterAll(() => {
  kernel?.kill();
  rmSync(workspace, { recursive: true, force: true });
});

/**
 * Sends a cell and interrupts it once its output contains `marker`; when the interrupt
 * went, the result, and how many `interrupted` came for the cell before its result (one
 * after it finds no cell and is not counted).
 */
async function interruptOn(code: string, marker: string) {
  let interruptedAt = 0;
  const acksBefore = kernel.acknowledgedInterrupts;
  const events: CellEvent[] = [];
  const result = await Promise.race([
    kernel.send(code, (event) => {
      events.push(event);
      if (!interruptedAt && event.event === "stream" && event.text.includes(marker)) {
        interruptedAt = Date.now();
        kernel.interrupt();
      }
    }),
    kernel.exited.then(() => Promise.reject(new Error(kernel.describeExit()))),
  ]);
  return { interruptedAt, resultAt: Date.now(), result, events, acknowledged: kernel.acknowledgedInterrupts - acksBefore };
}

describe("python driver: interrupts", () => {
  test("a loop printing without end: `interrupted` comes before the result, which keeps the output", async () => {
    const run = await interruptOn("n = 0\nwhile True:\n    print('x' * 1000)\n    n += 1", "xxx");
    expect(run.result.success).toBe(false);
    expect(run.result.error?.trim().split("\n").at(-1)).toStartWith("KeyboardInterrupt");
    expect(run.acknowledged).toBe(1);
    expect(run.result.output.startsWith("x".repeat(1000))).toBe(true);
    // The state is kept.
    const after = await kernel.send("n > 0");
    expect(after.output).toBe("True\n");
  });

  test("code that ignores SIGINT never says `interrupted`", async () => {
    const before = kernel.acknowledgedInterrupts;
    let interrupted = false;
    const pending = kernel.send(
      "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('ignoring', flush=True)\nfor _ in range(40):\n    time.sleep(0.05)\nprint('done')",
      (event) => {
        if (!interrupted && event.event === "stream" && event.text.includes("ignoring")) {
          interrupted = true;
          kernel.interrupt();
        }
      },
    );
    const result = await pending;
    expect(interrupted).toBe(true);
    // It ran to its end, the interrupt unseen, and acknowledged nothing.
    expect(result).toMatchObject({ success: true, output: "ignoring\ndone\n" });
    expect(kernel.acknowledgedInterrupts).toBe(before);
  });
});
