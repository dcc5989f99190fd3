/** What the code-context end-to-end tests share (tests/e2e/contexts*.test.ts). */
import { expect } from "bun:test";
import { zContext } from "../../../src/bay/api/generated/index.ts";
import type { TestBay } from "../../support/harness.ts";

/** POST /v1/sandboxes/{id}/code/exec, as `owner` when given. */
export const codeExec = (t: TestBay, id: string, body: Record<string, unknown>, owner?: string) =>
  t.json("POST", `/v1/sandboxes/${id}/code/exec`, { body, ...(owner ? { owner } : {}) });

/** Creates a context (201, a valid body) and answers its id. */
export async function newContext(t: TestBay, id: string, body: Record<string, unknown>): Promise<string> {
  const res = await t.json("POST", `/v1/sandboxes/${id}/contexts`, { body });
  if (res.status !== 201) throw new Error(`create context: ${res.status} ${JSON.stringify(res.body)}`);
  expect(zContext.safeParse(res.body).success).toBe(true);
  return res.body.id;
}
