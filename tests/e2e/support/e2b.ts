/** E2B calls the end-to-end files share, made to a Bay's app in process. */
import { expect } from "bun:test";
import type { TestBay } from "../../support/harness.ts";

/** What an E2B create answers that the tests use. */
export interface E2bCreated {
  sandboxID: string;
  envdAccessToken: string;
  trafficAccessToken: string;
}

/** Creates a sandbox through E2B's `POST /v2/sandboxes` (template `base`) as `owner`. */
export async function createE2bSandbox(t: TestBay, owner = "alice"): Promise<E2bCreated> {
  const res = await t.bay.app.request("/e2b/v2/sandboxes", {
    method: "POST",
    headers: { "x-owner": owner, "content-type": "application/json" },
    body: JSON.stringify({ templateID: "base" }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as E2bCreated;
}
