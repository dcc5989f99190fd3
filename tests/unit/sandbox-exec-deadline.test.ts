/**
 * A background start with a deadline (an E2B command's timeoutMs, SandboxExec.shell's
 * `deadlineAt`): the Ship is sent the time left as the start is sent, after whatever
 * the router did first (a runtime start), never the time left when the call came in;
 * a start whose deadline passed meanwhile sends nothing. A router stand-in that takes
 * `startMs` before it runs the call, and a Ship client stand-in that records it.
 */
import { expect, test } from "bun:test";
import type { ShellExecRequest } from "../../src/protocol/ship/index.ts";
import type { CapabilityRouter } from "../../src/bay/domain/capability-router.ts";
import { SandboxExec } from "../../src/bay/domain/sandbox-exec.ts";
import type { ShipClient } from "../../src/bay/runtime/ship-client.ts";

function exec(startMs: number) {
  const sent: ShellExecRequest[] = [];
  const ship = {
    execShell: async (_s: unknown, body: ShellExecRequest) => {
      sent.push(body);
      return Response.json({ process_id: "proc-1" });
    },
  } as unknown as ShipClient;
  const router = {
    call: async (_ctx: unknown, plan: { run: (ship: ShipClient, s: unknown) => Promise<unknown> }) => {
      await Bun.sleep(startMs);
      return plan.run(ship, {});
    },
  } as unknown as CapabilityRouter;
  return { sandboxExec: new SandboxExec(router), sent };
}

const ctx = { owner: "o", sandboxId: "sbx", requestId: "r" };
const body: ShellExecRequest = { command: "sleep 100", timeout: 300, background: true, stdin: false };

test("the lifetime sent is what is left of the deadline once the runtime has started", async () => {
  const { sandboxExec, sent } = exec(400);
  await sandboxExec.shell(ctx, body, false, Date.now() + 1_000);
  expect(sent).toHaveLength(1);
  expect(sent[0]!.lifetime_ms).toBeGreaterThan(0);
  expect(sent[0]!.lifetime_ms).toBeLessThanOrEqual(600);
});

test("a deadline that passed while the runtime started sends nothing: timeout", async () => {
  const { sandboxExec, sent } = exec(300);
  const err = await sandboxExec.shell(ctx, body, false, Date.now() + 100).catch((e) => e);
  expect(err.code).toBe("timeout");
  expect(sent).toHaveLength(0);
});

test("without a deadline the request goes as it is (no lifetime)", async () => {
  const { sandboxExec, sent } = exec(0);
  await sandboxExec.shell(ctx, body);
  expect(sent[0]).toEqual(body);
  expect("lifetime_ms" in sent[0]!).toBe(false);
});
