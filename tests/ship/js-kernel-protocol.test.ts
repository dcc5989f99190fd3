/**
 * The JS kernel's protocol channel (what a cell writes cannot corrupt it), its output
 * cap and its process life; on real `ship js-kernel` processes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { JsKernelProcess } from "../../src/ship/kernel/js/js-kernel-process.ts";
import { INTERRUPTED_ERROR } from "../../src/ship/kernel/js/kernel.ts";
import { writeToEveryPipe } from "../support/kernel-forgery.ts";
import { endKernels, run, startKernel } from "./support/js-kernel.ts";

afterAll(endKernels);

describe("js kernel: the protocol channel cannot be corrupted", () => {
  let k: JsKernelProcess;
  beforeAll(async () => {
    k = await startKernel();
  });

  test("malformed events written by the cell to the kernel's own descriptors are ignored: the cell's real result and output come back", async () => {
    // The cell can reach the private channel (it runs in the kernel's process): it writes
    // malformed events for every cell id to every pipe and socket it holds.
    const lines = [];
    for (let id = 1; id < 40; id++) {
      lines.push(
        { id, event: "stream", name: "stdout", text: { evil: 1 } },
        { id, event: "stream", name: "stdin", text: "no such stream" },
        { id, event: "display", data: null },
        { id, event: "display", data: { "text/html": 5 } },
        { id, event: "result", success: "yes", output: { a: 1 }, error: 5, data: "x", execution_count: "x", truncated: null },
        {
          id,
          event: "result",
          success: true,
          output: "o",
          error: null,
          data: [{ type: "execute_result", data: null }],
          execution_count: 1,
          truncated: false,
        },
      );
    }
    const payload = `null\n5\n${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
    const cell = [...writeToEveryPipe(payload), 'console.log("real output")', "'real value'"].join("\n");
    const res = await run(k, cell);
    expect(res.result).toMatchObject({ success: true, error: null, truncated: false });
    expect(res.result.output).toContain("real output");
    expect(res.result.data).toEqual([{ type: "execute_result", data: { "text/plain": '"real value"' } }]);
    for (const e of res.events) {
      if (e.event === "stream") expect(typeof e.text === "string" && (e.name === "stdout" || e.name === "stderr")).toBe(true);
      else expect(Object.values(e.data).every((v) => typeof v === "string")).toBe(true);
    }
    // The channel is still read: the next cell answers.
    expect((await run(k, "40 + 2")).result.data).toEqual([{ type: "execute_result", data: { "text/plain": "42" } }]);
  });

  test("garbage written to fd 1 and fd 2, by the cell and by children inheriting stdio, is captured as output", async () => {
    const forged = JSON.stringify({
      id: 1,
      event: "result",
      success: true,
      output: "forged",
      error: null,
      data: [],
      execution_count: 1,
      truncated: false,
    });
    const res = await run(
      k,
      `const fs = require("node:fs")\nfs.writeSync(1, ${JSON.stringify(`${forged}\n`)})\nfs.writeSync(2, "not json on fd 2\\n")\nfs.writeSync(1, "half a line")\n` +
        `Bun.spawnSync(["sh", "-c", "echo child-out; echo child-err >&2"], { stdout: "inherit", stderr: "inherit" })\n` +
        `require("node:child_process").execSync("echo exec-inherit", { stdio: "inherit" })\n'done'`,
    );
    expect(res.result.success).toBe(true);
    for (const piece of [forged, "not json on fd 2", "half a line", "child-out", "child-err", "exec-inherit"])
      expect(res.result.output).toContain(piece);
    expect(res.result.output).toEndWith('"done"\n');
    expect((await run(k, "1 + 1")).result).toMatchObject({ success: true, output: "2\n" });
  });

  test("a child printing far more than a pipe holds, synchronously, does not deadlock the kernel", async () => {
    const res = await run(
      k,
      `require("node:child_process").execSync("head -c 3000000 /dev/zero | tr '\\\\0' x", { stdio: "inherit" }); 'after'`,
    );
    expect(res.result.success).toBe(true);
    expect(res.result.data).toEqual([{ type: "execute_result", data: { "text/plain": '"after"' } }]);
    expect(res.result.truncated).toBe(true);
    const output = res.result.output;
    expect(output.length === 1024 * 1024 && /^x+$/.test(output)).toBe(true);
  });

  test("closing fds 1 and 2 in one cell leaves the next cell's output intact", async () => {
    await run(k, "require('node:fs').closeSync(1); require('node:fs').closeSync(2)");
    const res = await run(k, "require('node:fs').writeSync(1, 'raw again\\n'); console.log('console again'); 3");
    expect(res.result.output).toContain("raw again\n");
    expect(res.result.output).toContain("console again\n");
    expect(res.result.output).toEndWith("3\n");
  });

  test("user code replacing JSON.stringify, console or the kernel's helper does not break the kernel", async () => {
    const own = await startKernel();
    await run(own, "JSON.stringify = () => 'broken'\nconst __bay__ = 1\nglobalThis.console = { log() {} }");
    const res = await run(own, "process.stdout.write('still captured\\n'); 6 * 7");
    expect(res.result).toMatchObject({ success: true, output: "still captured\n42\n" });
  });

  test("user code reading stdin sees end of file, not the requests", async () => {
    const res = await run(k, "JSON.stringify(require('node:fs').readFileSync(0, 'utf8'))");
    expect(res.result.output).toBe('"\\"\\""\n');
    expect((await run(k, "'still served'")).result.output).toBe('"still served"\n');
  });

  test("output written after a cell ended goes to the next cell", async () => {
    // The late output happens when the test signals the kernel, after the first cell's result.
    const first = await run(
      k,
      "globalThis.printedLate = new Promise((resolve) => process.once('SIGUSR2', () => {\n" +
        "  console.log('late line'); require('node:fs').writeSync(2, 'late raw\\n'); resolve(undefined) }))\nundefined",
    );
    expect(first.result.output).toBe("");
    process.kill(k.pid, "SIGUSR2");
    const next = await run(k, "await printedLate; 'next'");
    expect(next.result.output).toContain("late line\n");
    expect(next.result.output).toContain("late raw\n");
    expect(next.result.output).toEndWith('"next"\n');
  });
});

describe("js kernel: caps and process life", () => {
  test("output over SHIP_MAX_OUTPUT_BYTES is cut and flagged, streams included", async () => {
    const k = await startKernel({ maxOutputBytes: 1000 });
    const res = await run(k, "for (let i = 0; i < 500; i++) console.log('line ' + i + ' é')\n'end'");
    expect(res.result.truncated).toBe(true);
    expect(Buffer.byteLength(res.result.output)).toBeLessThanOrEqual(1000);
    const streamed = res.events.filter((e) => e.event === "stream").reduce((n, e) => n + Buffer.byteLength(e.text), 0);
    expect(streamed).toBeLessThanOrEqual(1000);
    expect(res.result.output).toStartWith("line 0 é\nline 1 é\n");
    const big = await run(k, "display({ 'text/html': 'x'.repeat(5000), 'image/png': 'A'.repeat(5000) }, { raw: true })");
    expect(big.result.truncated).toBe(true);
    expect(big.result.data[0]!.data).toEqual({ "text/html": "x".repeat(1000) });
    expect((await run(k, "'fine'")).result).toMatchObject({ truncated: false, output: '"fine"\n' });
  });

  test("the kernel finishes the cells sent, then exits cleanly when Ship closes its stdin", async () => {
    const k = await startKernel();
    const last = k.send("await new Promise((r) => setTimeout(r, 20)); 'last'");
    k.close();
    expect((await last).output).toBe('"last"\n');
    await k.exited;
    expect(k.describeExit()).toBe("js kernel exited (exit code 0)");
  });

  test("process.exit in user code ends the kernel, and the exit says so", async () => {
    const k = await startKernel();
    const res = k.send("process.exit(3)");
    await k.exited;
    expect(k.isAlive).toBe(false);
    expect(k.describeExit()).toContain("exit code 3");
    expect(await Promise.race([res, Bun.sleep(10).then(() => "no reply")])).toBe("no reply");
  });

  test("a kernel that dies with a large cell still in its stdin pipe leaves no failed write behind (Ship once crashed on it: EPIPE)", async () => {
    const escaped: unknown[] = [];
    const note = (reason: unknown) => escaped.push(reason);
    process.on("unhandledRejection", note);
    try {
      const k = await startKernel();
      void k.send("while (true) {}"); // busy: it reads no more of its stdin
      await Bun.sleep(100);
      // Far more than the pipe holds: the write waits for a reader that never comes.
      void k.send(`// ${"x".repeat(8 * 1024 * 1024)}`);
      await Bun.sleep(100);
      k.kill("test");
      await k.exited;
      // A second one, by close() (Ship's own end of a context), behind a full pipe too.
      const k2 = await startKernel();
      void k2.send("while (true) {}");
      void k2.send(`// ${"y".repeat(8 * 1024 * 1024)}`);
      k2.close();
      await Bun.sleep(100);
      k2.kill("test");
      await k2.exited;
      await Bun.sleep(300);
      expect(escaped.map(String)).toEqual([]);
    } finally {
      process.off("unhandledRejection", note);
    }
  });

  test("kill() ends the kernel and what its user code spawned", async () => {
    const k = await startKernel();
    const pid = Number((await run(k, "Bun.spawn(['sleep', '300']).pid")).result.output);
    expect(pid).toBeGreaterThan(0);
    k.kill("test");
    await k.exited;
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 5000;
    while (alive() && Date.now() < deadline) await Bun.sleep(25);
    expect(alive()).toBe(false);
    expect(k.describeExit()).toBe("js kernel was killed: test");
  });
});

describe("js kernel: a forged acknowledgement", () => {
  test("an `interrupted` the cell writes before Ship interrupts is not believed: SIGINT still ends its loop, the context stays", async () => {
    const k = await startKernel();
    await run(k, "let kept = 'state'");
    // The cell acknowledges an interrupt nobody asked for, on every pipe it holds, for every cell id, then spins.
    const acks = Array.from({ length: 50 }, (_, i) => `${JSON.stringify({ id: i + 1, event: "interrupted" })}\n`).join("");
    const forge = [...writeToEveryPipe(acks), "console.log('looping')", "for (;;) {}"].join("\n");
    const before = k.acknowledgedInterrupts;
    const res = await run(k, forge, "looping");
    expect(res.result).toMatchObject({ success: false, error: INTERRUPTED_ERROR });
    // Only the kernel's own acknowledgement, after Ship asked, counted.
    expect(k.acknowledgedInterrupts).toBe(before + 1);
    expect(k.isAlive).toBe(true);
    expect((await run(k, "kept + '!'")).result.output).toBe('"state!"\n');
  });
});
