/** A shell command past its timeout, through Bay: 504 timeout in the error model; the sandbox keeps answering. */
import { expect, test } from "bun:test";
import type { TestBay } from "../support/harness.ts";
import { sh, withSandbox } from "./support/e2e.ts";
import { sharedE2eBay } from "./support/suite.ts";

let t: TestBay;
sharedE2eBay((bay) => (t = bay));

test("shell exec past its timeout → 504 timeout with the output so far; the next command runs", async () => {
  await withSandbox(t, async (id) => {
    expect((await sh(t, id, { command: "true" })).status).toBe(200); // session started: the timeout below is the command's alone
    const r = await sh(t, id, { command: "echo started; sleep 300", timeout: 1 });
    expect({ status: r.status, code: r.body.error.code }).toEqual({ status: 504, code: "timeout" });
    expect(typeof r.body.error.request_id).toBe("string");
    expect(r.body.error.details).toMatchObject({ timeout: 1 });
    expect(r.body.error.details.output).toContain("started");
    const next = await sh(t, id, { command: "echo ok" });
    expect(next.status).toBe(200);
    expect(next.body.output.trim()).toBe("ok");
  });
}, 60_000);
