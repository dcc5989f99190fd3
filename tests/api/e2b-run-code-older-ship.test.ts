/**
 * E2B's runCode against a Ship built before runs could last a day (its schema takes
 * an exec timeout of at most 300 s): such Ships live on after an upgrade (a session
 * started before it, a pool member, another replica's, a pinned image). Bay's longer
 * timeout is refused when the request is checked, before anything runs, and Bay sends
 * the run once more with 300 s. Memory driver: a fake Ship with that older schema.
 */
import { afterEach, expect, test } from "bun:test";
import { SHIP_IMAGE } from "../support/images.ts";
import { createMemoryBay, e2bSandbox, type MemoryBay, memoryEngine } from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

const e2bHeaders = async (bay: MemoryBay) => ({
  ...(await e2bSandbox(bay, "code-interpreter-v1")).auth,
  "content-type": "application/json",
});

const lines = async (res: Response) =>
  (await res.text())
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { type: string; text?: string });

for (const [name, body] of [
  ["the default python context", { code: "6*7" }],
  ["a language context", { code: "6*7", language: "python" }],
] as const) {
  test(`runCode in ${name} on a Ship that takes at most 300 s: sent again with 300 s, and it runs once`, async () => {
    t = await createMemoryBay({ engine: memoryEngine({ images: { [SHIP_IMAGE]: { maxExecTimeout: 300 } } }) });
    const headers = await e2bHeaders(t);
    const res = await t.bay.app.request("/e2b/execute", { method: "POST", headers, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const got = await lines(res);
    expect(got.find((l) => l.type === "result")?.text).toBe("42");
    expect(got.at(-1)?.type).toBe("end_of_execution");
    // It ran once: the execution count the next run reports is the second.
    const next = await lines(
      await t.bay.app.request("/e2b/execute", { method: "POST", headers, body: JSON.stringify({ ...body, code: "1" }) }),
    );
    expect(next.find((l) => l.type === "number_of_executions")).toMatchObject({ execution_count: 2 });
  });
}

test("the older Ship's refusal is the fallback's only trigger: other validation errors still reach the client", async () => {
  t = await createMemoryBay({ engine: memoryEngine({ images: { [SHIP_IMAGE]: { maxExecTimeout: 300 } } }) });
  const headers = await e2bHeaders(t);
  const res = await t.bay.app.request("/e2b/execute", {
    method: "POST",
    headers,
    body: JSON.stringify({ code: "1", context_id: "no-such-context" }),
  });
  expect(res.status).toBe(404);
});
