/**
 * The garbage of relayed bytes. Every chunk Bay pumps through JavaScript (a file
 * going up to a Ship or into the spool, a download going out to a client) is an
 * ArrayBuffer that stays resident until the collector next runs, and the allocator
 * keeps the high-water mark afterwards. JavaScriptCore's own heuristics let 15–20
 * MiB of them pile up during one 256 MiB transfer (measured from the process:
 * arrayBuffers peaked at 17 MiB while the heap without them was 11 MiB). So after
 * every COLLECT_EVERY_BYTES relayed, counted across all transfers of the process,
 * a minor (eden) collection frees the chunks already sent on: about 0.4 ms of the
 * event loop per 8 MiB here, well under 1 % of a transfer's time.
 *
 * Callers count each chunk as they hand it on (`relayed`), once per pump, so a
 * chunk that passes through two pumps is counted twice: at worst a collection
 * comes twice as often.
 */

/** Bytes relayed between two collections. */
export const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;

export class RelayedBytes {
  private pending = 0;

  constructor(
    private readonly collect: () => void = () => Bun.gc(false),
    private readonly every = COLLECT_EVERY_BYTES,
  ) {}

  /** Counts `bytes` handed on; collects when COLLECT_EVERY_BYTES have gone by since the last collection. */
  relayed(bytes: number): void {
    this.pending += bytes;
    if (this.pending < this.every) return;
    this.pending = 0;
    this.collect();
  }
}

const processWide = new RelayedBytes();

/** Counts `bytes` of a chunk handed on by one of Bay's byte pumps (see RelayedBytes). */
export const relayed = (bytes: number): void => processWide.relayed(bytes);
