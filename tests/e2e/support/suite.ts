/** The per-file set-up shared by end-to-end test files (kept apart from e2e.ts, which the benchmarks import). */
import { afterAll, beforeAll } from "bun:test";
import { createTestBay, type TestBay, type TestBayOptions } from "../../support/harness.ts";
import { requireShipImages } from "./e2e.ts";

/**
 * One Bay on real Docker for the whole file: before the file's tests the Ship
 * image is required (failing, never skipping, when it is missing) and the Bay is
 * created and handed to `use`; after them it is closed.
 */
export function sharedE2eBay(use: (t: TestBay) => void, opts: TestBayOptions = {}): void {
  let t: TestBay | undefined;
  beforeAll(async () => {
    await requireShipImages();
    t = await createTestBay(opts);
    use(t);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });
}
