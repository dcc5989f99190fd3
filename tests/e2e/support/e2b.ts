/** E2B calls the end-to-end files share, made to a Bay's app in process. */
import { afterAll, beforeAll, expect } from "bun:test";
import { createTestBay, type TestBay } from "../../support/harness.ts";
import { requireShipImages } from "./e2e.ts";

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

/** For a file's tests: a Bay in process and one E2B sandbox on it, given to `use` (which may set more up) before the first test; the Bay is closed after the last. */
export function e2bSandboxBay(use: (t: TestBay, sb: E2bCreated) => void | Promise<void>): void {
  let t: TestBay | undefined;
  beforeAll(async () => {
    await requireShipImages();
    t = await createTestBay();
    await use(t, await createE2bSandbox(t));
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });
}
