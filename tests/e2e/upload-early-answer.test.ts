/**
 * A sandbox upload that Ship refuses before it has read the body (the path's
 * parent is a file) answers the Ship's error, not a malformed-body one: Bay's
 * own cancelling of the rest of the body, once the Ship has answered, is not
 * the client's failure. Large bodies make the Ship answer while bytes are still
 * on their way, every time.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { dropSandbox, newSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => {
  t = bay;
});
let id: string;
beforeAll(async () => {
  id = await newSandbox(t);
  const w = await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "afile", content: "x" } });
  expect(w.status).toBe(200);
});
afterAll(async () => {
  await dropSandbox(t, id);
});

test("an upload under a file answers invalid_path however much of the body is still unsent", async () => {
  for (const size of [64 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024]) {
    for (let i = 0; i < 3; i++) {
      const form = new FormData();
      form.set("path", "afile/inside.bin");
      form.set("file", new Blob([new Uint8Array(size)]), "inside.bin");
      const r = await t.json("POST", `/v1/sandboxes/${id}/filesystem/upload`, { body: form });
      expect({ size, status: r.status, code: r.body?.error?.code }).toEqual({ size, status: 400, code: "invalid_path" });
    }
  }
});
