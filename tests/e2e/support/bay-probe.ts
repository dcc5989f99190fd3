/**
 * Bay's entry point (`main`) with a memory probe for tests, run by
 * `spawnBay(env, { probe: true })`: on the IPC message "retained" it runs a full
 * garbage collection and answers what is still held. A subprocess' RSS alone
 * mixes what Bay keeps with garbage the collector has not reached yet (on a
 * loaded machine that can be tens of MiB for a fast stream), so a test of what
 * Bay keeps measures after a collection.
 */
import { heapStats } from "bun:jsc";
import { join } from "node:path";

/** What a Bay process holds after a full collection, in bytes. */
export interface Retained {
  rss: number;
  /** The JavaScript heap plus memory its objects own outside it (buffers). */
  heap: number;
}

process.on("message", (message) => {
  if (message !== "retained") return;
  Bun.gc(true);
  const h = heapStats();
  process.send?.({ rss: process.memoryUsage().rss, heap: h.heapSize + h.extraMemorySize } satisfies Retained);
});

// The checkout being run is the working directory (spawnBay's `root`).
const { main } = (await import(join(process.cwd(), "src/bay/main.ts"))) as typeof import("../../../src/bay/main.ts");
await main();
