/**
 * A JavaScript cell that breaks a built-in, through Bay on the real Ship image. Cells run
 * in the kernel's realm, so a cell can break what the kernel's own code uses. Before,
 * `Promise.prototype.then = ...` held the cell past its timeout for two minutes, and
 * `Array.prototype.push = null` failed every later cell of the context for good. Now the
 * kernel goes on where it keeps its own copies, and otherwise exits at once saying why:
 * Ship starts a fresh one and the answer says kernel_restarted.
 */
import { describe, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { profiles, py, SHIP_IMAGE, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay), { config: { profiles: profiles({ id: "python-default", image: SHIP_IMAGE }) } });

const js = (id: string, context: string, code: string) =>
  t.json("POST", `/v1/sandboxes/${id}/code/exec`, { body: { context_id: context, code, timeout: 10 } });

async function jsContext(id: string): Promise<string> {
  const res = await t.json("POST", `/v1/sandboxes/${id}/contexts`, { body: { language: "javascript" } });
  expect(res.status).toBe(201);
  return res.body.id;
}

describe("a JavaScript cell that breaks a built-in", () => {
  test("Promise.prototype.then replaced: the cell answers at once and the context keeps its state", async () => {
    await withSandbox(t, async (id) => {
      const ctx = await jsContext(id);
      await js(id, ctx, "let kept = 41");
      // An answer, not the 504 of its 10 s timeout (which used to come two minutes late).
      const broke = await js(id, ctx, "Promise.prototype.then = function () {}\n'done'");
      expect(broke.status).toBe(200);
      expect(broke.body).toMatchObject({ success: true, output: '"done"\n', kernel_restarted: false });
      expect((await js(id, ctx, "kept + 1")).body).toMatchObject({ success: true, output: "42\n", kernel_restarted: false });
    });
  });

  test("Array.prototype.push = null: that cell or the next says the kernel was restarted and why; the one after runs; nothing else is touched", async () => {
    await withSandbox(t, async (id) => {
      await py(t, id, "calm = 'py'");
      const other = await jsContext(id);
      await js(id, other, "const mine = 'other'");
      const ctx = await jsContext(id);
      await js(id, ctx, "let kept = 1");
      // Said by the breaking cell's own answer when its ending already needs push, else by the next one.
      const broke = await js(id, ctx, "Array.prototype.push = null");
      expect(broke.status).toBe(200);
      const told = broke.body.kernel_restarted ? broke : await js(id, ctx, "kept");
      expect(told.status).toBe(200);
      expect(told.body).toMatchObject({ success: false, kernel_restarted: true });
      expect(told.body.error).toContain("exit code 70");
      expect(told.body.error).toContain("the kernel's own code no longer works");
      // A fresh kernel: it works, and the broken one's variables are gone.
      expect((await js(id, ctx, "typeof kept")).body).toMatchObject({ success: true, output: '"undefined"\n', kernel_restarted: false });
      expect((await js(id, ctx, "[1].concat(2).length")).body.output).toBe("2\n");
      // Each context is its own process: the other JS context and Python are as they were.
      expect((await js(id, other, "mine")).body).toMatchObject({ output: '"other"\n', kernel_restarted: false });
      expect((await py(t, id, "calm")).body).toMatchObject({ output: "'py'\n", kernel_restarted: false });
    });
  });

  test("Object.prototype.then defined: a clear error at once, not a timeout", async () => {
    await withSandbox(t, async (id) => {
      const ctx = await jsContext(id);
      const res = await js(id, ctx, "Object.prototype.then = function () {}");
      expect(res.status).toBe(200); // not the 504 of its timeout
      expect(res.body).toMatchObject({ success: false, kernel_restarted: true });
      expect(res.body.error).toContain("Object.prototype.then");
      expect((await js(id, ctx, "({ a: 1 }).a")).body).toMatchObject({ success: true, output: "1\n" });
    });
  });
});
