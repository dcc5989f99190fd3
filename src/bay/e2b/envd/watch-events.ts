/** What a Ship `dropped` event on a file watch means to E2B's watchers. */
import type { StreamEvent } from "./sse-events.ts";

/**
 * Whether changes were lost: Ship's queue or the kernel's overflowed, or the walks of new
 * directories fell too far behind (`walk_backlog`). A `watch_limit`
 * drop says only that a recursive watch reached its cap of directories, and an
 * `unwatchable` one that it met a directory its user may not read: the ones it covers
 * are still reported in full, so the watch goes on (a big tree, a repository with
 * node_modules, would otherwise end every recursive watch at once).
 */
export function changesLost(e: StreamEvent): boolean {
  if (e.event !== "dropped") return false;
  const reason = (e.data as { reason?: unknown } | null)?.reason;
  return reason !== "watch_limit" && reason !== "unwatchable";
}
