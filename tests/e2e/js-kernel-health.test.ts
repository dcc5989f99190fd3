/**
 * Through Bay, on real Docker with the real Ship image: a JS context whose cell broke a
 * built-in the kernel's own code uses (src/ship/kernel/js/health.ts) is back, on a fresh
 * kernel that says `kernel_restarted`, within a call or two and without any call waiting
 * for its timeout, where before every later cell of that context failed. The sandbox's
 * other contexts and its default Python kernel keep their state.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { profiles, py, SHIP_IMAGE, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), { config: { profiles: profiles({ id: "python-default", image: SHIP_IMAGE }) } });

const code = (id: string, body: Record<string, unknown>) => t.json("POST", `/v1/sandboxes/${id}/code/exec`, { body });

async function newContext(id: string, language: string): Promise<string> {
  const res = await t.json("POST", `/v1/sandboxes/${id}/contexts`, { body: { language } });
  expect(res.status).toBe(201);
  return res.body.id;
}

describe("a JS context whose cell broke the promise machinery", () => {
  test("Promise.prototype.then replaced: the cell is answered, and the context keeps its state", async () => {
    await withSandbox(t, async (id) => {
      const ctx = await newContext(id, "typescript");
      expect((await code(id, { context_id: ctx, code: "let kept: number = 41" })).status).toBe(200);
      const broke = await code(id, { context_id: ctx, code: "Promise.prototype.then = function () {}\n'broke'", timeout: 30 });
      expect(broke.body).toMatchObject({ success: true, output: '"broke"\n', kernel_restarted: false });
      const after = await code(id, { context_id: ctx, code: "await new Promise((r) => setTimeout(() => r(1), 5)) + kept", timeout: 30 });
      expect(after.body).toMatchObject({ success: true, output: "42\n", kernel_restarted: false });
    });
  });
});

describe("a JS context whose cell broke a built-in the kernel uses", () => {
  for (const breaker of [
    "Array.prototype.push = null",
    "String.prototype.split = null",
    "Object.entries = null",
    "Object.prototype.then = function () {}",
  ]) {
    test(`${breaker}: a fresh kernel within a few calls, none of them a timeout; the rest of the sandbox untouched`, async () => {
      await withSandbox(t, async (id) => {
        const ctx = await newContext(id, "javascript");
        const other = await newContext(id, "typescript");
        expect((await code(id, { context_id: ctx, code: "let kept = 1" })).status).toBe(200);
        expect((await code(id, { context_id: other, code: "let mine: number = 2" })).status).toBe(200);
        expect((await py(t, id, "steady = 'py'")).status).toBe(200);

        const answers = [await code(id, { context_id: ctx, code: `${breaker}\n'broke'`, timeout: 30 })];
        let fresh = false;
        for (let i = 0; i < 4 && !fresh; i++) {
          const r = await code(id, { context_id: ctx, code: "typeof kept === 'undefined' ? 'fresh' : 'old'", timeout: 30 });
          answers.push(r);
          fresh = r.status === 200 && r.body.success === true && String(r.body.output).includes("fresh");
        }
        const seen = answers.map((r) => [r.status, r.body.success, r.body.kernel_restarted, r.body.error?.code ?? r.body.error]);
        console.log(`[js-kernel-health] ${breaker}: ${JSON.stringify(seen)}`);
        expect(fresh).toBe(true);
        expect(answers.some((r) => r.body.kernel_restarted === true)).toBe(true);
        // Each call was answered (a result, or the kernel's exit said as one): none waited for its timeout.
        for (const r of answers) expect(r.status).toBe(200);
        // The context works as new, and the others kept their state.
        expect((await code(id, { context_id: ctx, code: "[1, 2].map((n) => n * 21).at(-1)" })).body).toMatchObject({
          success: true,
          output: "42\n",
          kernel_restarted: false,
        });
        expect((await code(id, { context_id: other, code: "mine * 21" })).body).toMatchObject({ output: "42\n", kernel_restarted: false });
        expect((await py(t, id, "steady")).body).toMatchObject({ output: "'py'\n", kernel_restarted: false });
      });
    });
  }
});
