/**
 * What `/execute` refuses before anything runs, as E2B's interpreter does: a run that
 * names both a context and a language (400; E2B's "Only one of context_id or language
 * can be provided"), while the Python SDK's nulls for the one not given are no
 * conflict. Memory driver: a fake Ship.
 */
import { afterEach, expect, test } from "bun:test";
import { createMemoryBay, e2bSandbox, type MemoryBay } from "./support/memory-bay.ts";

let t: MemoryBay | null = null;
afterEach(async () => {
  await t?.close();
  t?.engine.shutdown();
  t = null;
});

async function execute(body: unknown): Promise<Response> {
  t = await createMemoryBay();
  const headers = { ...(await e2bSandbox(t, "code-interpreter-v1")).auth, "content-type": "application/json" };
  return t.bay.app.request("/e2b/execute", { method: "POST", headers, body: JSON.stringify(body) });
}

test("a run naming both a context and a language is refused with 400", async () => {
  const res = await execute({ code: "6*7", context_id: "some-context", language: "python" });
  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ code: 400, message: expect.stringContaining("only one of context_id or language") });
});

test("the Python SDK's nulls for the one not given are no conflict", async () => {
  const byLanguage = await execute({ code: "6*7", context_id: null, language: "python", env_vars: null });
  expect(byLanguage.status).toBe(200);
  expect(
    (await byLanguage.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).type),
  ).toContain("end_of_execution");
  const byContext = await execute({ code: "6*7", context_id: "no-such-context", language: null, env_vars: null });
  expect(byContext.status).toBe(404);
});
