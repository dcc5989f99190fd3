/**
 * How long a `runCode` may run, with the official SDK (@e2b/code-interpreter 2.8.0)
 * on a real Bay and Docker: E2B's server sets no limit of its own, so Bay's default
 * cap (e2b.run_code_timeout) is a day, far past Bay's own /v1 limit of 300 s. What
 * ends a run sooner: its client leaving (the SDK's timeoutMs), which interrupts the
 * code and keeps the kernel, and a lower cap set by the operator, which answers a
 * TimeoutError. While a run is silent, Bay sends E2B's keepalive line every 5 s
 * (which the SDK skips). Each Bay is its own process; the SDK is pointed at it per call.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Sandbox as CodeSandbox } from "@e2b/code-interpreter";
import { within } from "../support/within.ts";
import { type BayProcess, requireShipImages, SHIP_IMAGE, spawnBay } from "./support/e2e.ts";

const KEY = `e2b_${"c3".repeat(20)}`;
const CAP_SECONDS = 2;
let byDefault: BayProcess;
let capped: BayProcess;
const made: Array<{ sb: CodeSandbox }> = [];

const connection = (bay: BayProcess) => ({ apiKey: KEY, apiUrl: `${bay.url}/e2b`, sandboxUrl: `${bay.url}/e2b` });
const env = { BAY_AUTH_MODE: "api_key", BAY_API_KEY: KEY, BAY_API_KEY_OWNER: "carol" };

async function sandboxOn(bay: BayProcess): Promise<CodeSandbox> {
  const sb = await within(60_000, "create", CodeSandbox.create(connection(bay)));
  made.push({ sb });
  return sb;
}

beforeAll(async () => {
  await requireShipImages([SHIP_IMAGE]);
  [byDefault, capped] = await Promise.all([spawnBay(env), spawnBay({ ...env, BAY_E2B_RUN_CODE_TIMEOUT: String(CAP_SECONDS) })]);
});

afterAll(async () => {
  for (const { sb } of made) await sb.kill().catch(() => {});
  await Promise.all([byDefault?.close(), capped?.close()]);
});

describe("runCode's time on Bay's side", () => {
  test("a run whose client gives up (the SDK's timeoutMs) is interrupted, and the kernel answers the next run at once with its state", async () => {
    const sb = await sandboxOn(byDefault);
    expect((await within(60_000, "set", sb.runCode("kept = 41"))).error).toBeUndefined();
    // Ten minutes of sleep: only the client leaving ends it (the default cap is a day).
    // It prints first: Bun's fetch (this test's, and so the SDK's) resolves only with the
    // first byte of the body, and the SDK starts timeoutMs once it has resolved.
    const gaveUp = sb.runCode("import time\nprint('sleeping', flush=True)\ntime.sleep(600)", { timeoutMs: 3_000 });
    await expect(within(30_000, "abandoned run", gaveUp)).rejects.toThrow(/timeout|timed out|abort/i);
    // Were the sleep still running, this run would wait behind it in the kernel's queue.
    const next = await within(30_000, "next run", sb.runCode("kept + 1", { timeoutMs: 20_000 }));
    expect(next.text).toBe("42");
  });

  test("an operator's lower cap (e2b.run_code_timeout) ends a run with a TimeoutError and its output so far; the kernel keeps its state", async () => {
    const sb = await sandboxOn(capped);
    expect((await within(60_000, "set", sb.runCode("kept = 6"))).error).toBeUndefined();
    const seen: string[] = [];
    const cut = await within(
      60_000,
      "capped run",
      sb.runCode("import time\nprint('before', flush=True)\ntime.sleep(600)\nprint('after')", {
        onStdout: (m) => void seen.push(m.line),
        timeoutMs: 120_000,
      }),
    );
    expect(cut.error?.name).toBe("TimeoutError");
    expect(seen).toEqual(["before\n"]);
    expect((await within(30_000, "after the cap", sb.runCode("kept * 7"))).text).toBe("42");
  });

  test("a run within the cap is not cut", async () => {
    const sb = await sandboxOn(capped);
    const r = await within(60_000, "short run", sb.runCode("import time\ntime.sleep(0.5)\n'done'"));
    expect([r.error, r.text]).toEqual([undefined, "done"]);
  });

  test("a silent run gets E2B's keepalive line every 5 s, between its output and its end, and the SDK skips it", async () => {
    const sb = await sandboxOn(byDefault);
    const code = "import time\nprint('a', flush=True)\ntime.sleep(6)\n42";
    const res = await within(
      60_000,
      "raw execute",
      fetch(`${byDefault.url}/e2b/execute`, {
        method: "POST",
        headers: {
          "e2b-sandbox-id": sb.sandboxId,
          "x-access-token": (sb as unknown as { envdAccessToken?: string }).envdAccessToken ?? "",
          "content-type": "application/json",
        },
        body: JSON.stringify({ code }),
      }),
    );
    expect(res.status).toBe(200);
    const types = (await within(60_000, "raw body", res.text()))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).type);
    expect(types).toEqual(["stdout", "keepalive", "result", "number_of_executions", "end_of_execution"]);
    const seen: string[] = [];
    const r = await within(60_000, "sdk run", sb.runCode(code, { onStdout: (m) => void seen.push(m.line) }));
    expect([r.error, r.text, seen, r.logs.stdout]).toEqual([undefined, "42", ["a\n"], ["a\n"]]);
  });
});
