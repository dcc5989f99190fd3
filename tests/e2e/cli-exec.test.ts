/**
 * `bay sandbox exec` streams (src/bay/cli/exec-stream.ts), run as a user runs it: a
 * `bay` process against a Bay served over HTTP on real Docker. Output shows up while
 * the command still runs (the test answers a line the command waits on); a Python
 * cell's value and traceback come once, after its output; Ctrl-C interrupts the run in
 * the sandbox; a timeout prints what came and fails; another owner's sandbox is not found.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { within } from "../support/within.ts";
import { sh, withSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";
import { CLI, cliEnv } from "./support/cli.ts";

let t: TestBay;
let served: ServedBay;
servedE2eBay((bay, s) => {
  t = bay;
  served = s;
});

function spawnExec(args: string[], owner = "alice") {
  return Bun.spawn(["bun", CLI, "sandbox", "exec", ...args], {
    env: cliEnv(served, owner),
    stdout: "pipe",
    stderr: "pipe",
  });
}

async function exec(args: string[], owner = "alice") {
  const proc = spawnExec(args, owner);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Reads `proc`'s stdout until it holds `text`; answers all read so far. */
async function readUntil(
  stream: ReadableStream<Uint8Array>,
  text: string,
): Promise<{ seen: string; rest: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  while (!seen.includes(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    seen += decoder.decode(value, { stream: true });
  }
  return { seen, rest: reader };
}

describe("bay sandbox exec", () => {
  test("a shell command's output shows up while it runs: it waits for a file the test writes once it saw the first line", async () => {
    await withSandbox(t, async (id) => {
      const proc = spawnExec([
        id,
        "--timeout",
        "60",
        "--",
        "echo first; while [ ! -e go ]; do sleep 0.1; done; echo second; echo oops >&2; exit 4",
      ]);
      const { seen, rest } = await within(30_000, "the first line before the command ends", readUntil(proc.stdout, "first\n"));
      expect(seen).toBe("first\n");
      expect((await sh(t, id, { command: "touch go" })).status).toBe(200);
      let tail = "";
      for (let r = await rest.read(); !r.done; r = await rest.read()) tail += new TextDecoder().decode(r.value);
      expect({ code: await proc.exited, tail, stderr: await new Response(proc.stderr).text() }).toEqual({
        code: 4,
        tail: "second\n",
        stderr: "oops\n",
      });
    });
  }, 120_000);

  test("Python: printed output, then the cell's value; a traceback once, on stderr", async () => {
    await withSandbox(t, async (id) => {
      expect(await exec([id, "--python", "print('a', flush=True)\nx = 6\nx * 7"])).toEqual({ code: 0, stdout: "a\n42\n", stderr: "" });
      const failed = await exec([id, "--python", "print('before')\n1/0"]);
      expect([failed.code, failed.stdout]).toEqual([1, "before\n"]);
      // Once: exactly the traceback the API answers for the same cell.
      const api = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "print('before')\n1/0" } });
      expect(api.body.error).toContain("ZeroDivisionError");
      const cell = (text: string) => text.replace(/Cell In \[\d+\]/g, "Cell In [n]");
      expect(cell(failed.stderr)).toBe(cell(`${api.body.error.replace(/\n$/, "")}\n`));
      expect(await exec([id, "--", "printf 'no newline'"])).toEqual({ code: 0, stdout: "no newline\n", stderr: "" });
      // A cell that logs (stderr) between its prints: each line once, on its own stream; then the value.
      const logged = await exec([
        id,
        "--python",
        "import logging\nlogging.warning('loading')\nfor i in range(3): print('row', i, flush=True)\nlogging.warning('done')\n'value'",
      ]);
      expect(logged).toEqual({
        code: 0,
        stdout: "row 0\nrow 1\nrow 2\n'value'\n",
        stderr: "WARNING:root:loading\nWARNING:root:done\n",
      });
      // Output whose events are far larger than its bytes (control characters escaped in JSON).
      const zeros = await exec([id, "--", "head -c 1000000 /dev/zero"]);
      expect([zeros.code, zeros.stdout.length, zeros.stderr]).toEqual([0, 1_000_001, ""]);
    });
  }, 120_000);

  test("Ctrl-C interrupts the run in the sandbox; a timeout prints what came and fails; another owner's sandbox is not found", async () => {
    await withSandbox(t, async (id) => {
      const loop = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.05)";
      const proc = spawnExec([id, "--python", loop]);
      await within(30_000, "the loop's first line", readUntil(proc.stdout, "0\n"));
      proc.kill("SIGINT");
      await proc.exited;
      await Bun.sleep(1000);
      const after = await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "i" } });
      expect(Number(after.body.output)).toBeLessThan(599);

      const slow = await exec([id, "--timeout", "1", "--", "echo started; sleep 10"]);
      expect([slow.code, slow.stdout]).toEqual([1, "started\n"]);
      expect(slow.stderr).toContain("timeout");

      // A reader that goes away (`| head -1`): the run is interrupted, not left to finish.
      const piped = spawnExec([id, "--", "for i in $(seq 1 100); do echo $i; sleep 0.05; done; touch finished"]);
      const first = await within(30_000, "the first line", readUntil(piped.stdout, "1\n"));
      await first.rest.cancel();
      expect(await within(30_000, "bay's exit after its reader left", piped.exited)).toBe(1);
      expect(await new Response(piped.stderr).text()).toBe("bay: the output was closed; the run was interrupted\n");
      await Bun.sleep(6_000);
      expect((await sh(t, id, { command: "test -e finished && echo yes || echo no" })).body.output).toBe("no\n");

      const other = await exec([id, "--", "true"], "mallory");
      expect(other.code).toBe(1);
      expect(other.stderr).toContain("not_found");
    });
  }, 120_000);
});
