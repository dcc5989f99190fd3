/**
 * A cell writing to its kernel's protocol channel, through Bay on the real image.
 * The channel is private to the kernel process, not to the code it runs: a Python
 * cell can os.write() to it, a JS cell fs.writeSync(). Malformed events written
 * there (a result whose `output` is an object, `success: "yes"`, a display whose
 * data is null, `null`) used to become the API's answer or a stream event as they
 * were, breaking the schema every client relies on, or stopped the channel's reader
 * so that the context hung until its timeout. They are ignored: the cell's own
 * result comes back, in the contract's shape, JSON and streamed alike.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { EventReader } from "../support/sse.ts";
import { withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";
import { writeToEveryPipe } from "../support/kernel-forgery.ts";

let t: TestBay;
sharedE2eBay((bay) => {
  t = bay;
});

/** Malformed events for every cell id up to 60, and lines that are JSON but no object. */
const FORGED = (() => {
  const lines: unknown[] = [null, 5];
  for (let id = 1; id < 60; id++) {
    lines.push(
      { id, event: "stream", name: "stdout", text: { evil: 1 } },
      { id, event: "display", data: null },
      { id, event: "result", success: "yes", output: { a: 1 }, error: 5, data: "x", execution_count: "x", truncated: null },
    );
  }
  return `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
})();

const PY_CELL = [
  "import os",
  `payload = ${JSON.stringify(FORGED)}.encode()`,
  "for fd in map(int, os.listdir('/proc/self/fd')):",
  "    try:",
  "        target = os.readlink(f'/proc/self/fd/{fd}')",
  "    except OSError:",
  "        continue",
  "    if fd > 2 and target.startswith(('pipe:', 'socket:')):",
  "        try: os.write(fd, payload)",
  "        except OSError: pass",
  "print('real output')",
].join("\n");

const JS_CELL = [...writeToEveryPipe(FORGED), 'console.log("real output")'].join("\n");

/** The result object of the contract (ExecResult), field by field. */
function expectResultShape(body: Record<string, unknown>): void {
  expect(typeof body.success).toBe("boolean");
  expect(typeof body.output).toBe("string");
  expect(body.error === null || typeof body.error === "string").toBe(true);
  expect(Array.isArray(body.data)).toBe(true);
  for (const item of body.data as Array<{ data: Record<string, unknown> }>) {
    expect(Object.values(item.data).every((v) => typeof v === "string")).toBe(true);
  }
  expect(body.execution_count === null || Number.isInteger(body.execution_count)).toBe(true);
  expect(typeof body.truncated).toBe("boolean");
}

describe("a cell writing malformed events to its kernel's protocol channel", () => {
  test("python (default context) and javascript: the real result, JSON and streamed, in the contract's shape; the context goes on", async () => {
    await withSandbox(t, async (id) => {
      const js = await t.json("POST", `/v1/sandboxes/${id}/contexts`, { body: { language: "javascript" } });
      expect(js.status).toBe(201);
      for (const [what, path, body] of [
        ["python", `/v1/sandboxes/${id}/python/exec`, { code: PY_CELL, timeout: 30 }],
        ["javascript", `/v1/sandboxes/${id}/code/exec`, { code: JS_CELL, context_id: js.body.id, timeout: 30 }],
      ] as const) {
        const plain = await t.json("POST", path, { body });
        expect([what, plain.status]).toEqual([what, 200]);
        expectResultShape(plain.body);
        // What went to the kernel's own stdout copy is the cell's output, as any write to stdout.
        expect(plain.body.success).toBe(true);
        expect(plain.body.output).toContain("real output\n");

        const res = await t.call("POST", path, { body, headers: { accept: "text/event-stream" } });
        expect(res.status).toBe(200);
        const events = await new EventReader(res).rest();
        for (const e of events) {
          const data = e.data;
          if (e.event === "stdout" || e.event === "stderr") expect(typeof data.text).toBe("string");
          else if (e.event === "display") expect(Object.values(data.data).every((v) => typeof v === "string")).toBe(true);
        }
        const last = events.at(-1)!;
        expect([what, last.event]).toEqual([what, "result"]);
        const result = last.data;
        expectResultShape(result);
        expect(result.success).toBe(true);
        expect(result.output).toContain("real output\n");
      }
      // Both contexts still answer at once.
      expect((await t.json("POST", `/v1/sandboxes/${id}/python/exec`, { body: { code: "print(6*7)" } })).body.output).toBe("42\n");
      const after = await t.json("POST", `/v1/sandboxes/${id}/code/exec`, { body: { code: "6*7", context_id: js.body.id } });
      expect(after.body.output).toBe("42\n");
    });
  }, 180_000);
});
