/**
 * The garbage of relayed bytes. Every chunk Bay pumps through JavaScript (a file
 * going up to a Ship or into the spool, a download going out to a client) is an
 * ArrayBuffer that stays resident until the collector next runs, and the allocator
 * keeps the high-water mark afterwards. JavaScriptCore's own heuristics let 15–20
 * MiB of them pile up during one 256 MiB transfer (measured from the process:
 * arrayBuffers peaked at 17 MiB while the heap without them was 11 MiB). So after
 * every COLLECT_EVERY_BYTES relayed, counted across all transfers of the process,
 * an eden collection (the young generation only, `bun:jsc`'s edenGC: the chunks
 * already sent on are young) frees them. It visits only what was allocated since the
 * last collection, so its cost does not grow with the heap (`Bun.gc(false)` may
 * collect the whole heap: ~14 ms at 1 GB, review s41), and collections are at least
 * MIN_INTERVAL_MS apart however fast bytes come.
 *
 * Callers count each chunk as they hand it on (`relayed`), once per pump, so a
 * chunk that passes through two pumps is counted twice: at worst a collection
 * comes twice as often.
 */
import type * as Jsc from "bun:jsc";

/** `bun:jsc`, loaded with the first collection: a Bay that relays nothing never loads it (~0.3 MiB). */
let jsc: typeof Jsc | undefined;
const eden = () => {
  jsc ??= require("bun:jsc") as typeof Jsc;
  jsc.edenGC();
};

/** Bytes relayed between two collections. */
export const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;
/** Least time between two collections. */
export const MIN_INTERVAL_MS = 50;

export class RelayedBytes {
  private pending = 0;
  private last = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly collect: () => void = eden,
    private readonly every = COLLECT_EVERY_BYTES,
    private readonly minIntervalMs = MIN_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Counts `bytes` handed on; collects once COLLECT_EVERY_BYTES have gone by since the last collection, and MIN_INTERVAL_MS. */
  relayed(bytes: number): void {
    if (!(bytes > 0)) return;
    this.pending += bytes;
    if (this.pending < this.every) return;
    const t = this.now();
    if (t - this.last < this.minIntervalMs) return;
    this.pending = 0;
    this.last = t;
    this.collect();
  }
}

const processWide = new RelayedBytes();

/** Counts `bytes` of a chunk handed on by one of Bay's byte pumps (see RelayedBytes). */
export const relayed = (bytes: number): void => processWide.relayed(bytes);
