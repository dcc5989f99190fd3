/** The per-file set-up shared by end-to-end test files (kept apart from e2e.ts, which the benchmarks import). */
import { afterAll, beforeAll } from "bun:test";
import { createTestBay, type TestBay, type TestBayOptions } from "../../support/harness.ts";
import { requireShipImages } from "./e2e.ts";
import { type ServedBay, serveBay } from "./serve.ts";

/**
 * One Bay on real Docker for the whole file: before the file's tests the Ship
 * image is required (failing, never skipping, when it is missing) and the Bay is
 * created and handed to `use`; after them it is closed.
 */
export function sharedE2eBay(use: (t: TestBay) => void, opts: TestBayOptions = {}): void {
  fileBay(opts, false, (t) => use(t));
}

/** The same Bay, also served over a real HTTP server (for WebSockets, streamed bodies, the CLI), stopped before it closes. */
export function servedE2eBay(use: (t: TestBay, served: ServedBay) => void, opts: TestBayOptions = {}): void {
  fileBay(opts, true, (t, served) => use(t, served!));
}

function fileBay(opts: TestBayOptions, serve: boolean, use: (t: TestBay, served?: ServedBay) => void): void {
  let t: TestBay | undefined;
  let served: ServedBay | undefined;
  beforeAll(async () => {
    await requireShipImages();
    t = await createTestBay(opts);
    if (serve) served = serveBay(t);
    use(t, served);
  }, 60_000);
  afterAll(async () => {
    await served?.stop();
    await t?.close();
  });
}
