/**
 * Workspace size accounting for `size_limit_mb`. Measuring a volume means
 * running `du` in a throwaway container (~0.1–0.5 s), so a measurement is cached
 * per workspace for a few seconds and the bytes Bay writes meanwhile are added
 * on top. The limit is therefore exact for what goes through Bay and at most
 * `ttlMs` stale for what user code writes inside a sandbox.
 *
 * A workspace that keeps changing under `du` (a storm of moves in the sandbox) cannot
 * be measured: that answer (409 `changing`) is kept for a second, so a burst of writes
 * does not run a helper each, and metrics fall back to the last figure measured.
 */
import { BayError } from "../errors.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";

const MiB = 1024 * 1024;
/** How long a measurement that failed because the workspace kept changing is answered again, not retried. */
const CHANGING_TTL_MS = 1_000;
/** Workspaces whose last figure is kept for metrics' fallback; the least recently measured go first. */
const LAST_KEPT = 10_000;

export interface WorkspaceUsageDeps {
  /** Bytes currently used by the workspace's volume. */
  measure(ws: WorkspaceRecord): Promise<number>;
  ttlMs?: number;
  now?: () => number;
}

/** What is used, what is allowed, and what is left. */
export interface QuotaHeadroom {
  usedBytes: number;
  limitBytes: number;
  remainingBytes: number;
}

interface Measured {
  bytes: number;
  at: number;
}

export class WorkspaceUsage {
  private readonly cache = new Map<string, Measured>();
  /** Per workspace, the last figure measured (plus what Bay wrote since), however old: metrics' fallback (a delete since is not taken off). */
  private readonly last = new Map<string, number>();
  /** Per workspace, a measurement that failed as `changing`, and when. */
  private readonly changing = new Map<string, { error: BayError; at: number }>();
  private readonly inflight = new Map<string, Promise<number>>();
  /** Per workspace, the end of the last write's serial section (serially). */
  private readonly tails = new Map<string, Promise<void>>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly deps: WorkspaceUsageDeps) {
    this.ttlMs = deps.ttlMs ?? 5_000;
    this.now = deps.now ?? Date.now;
  }

  /** Current usage, from the cache when fresh; concurrent callers share one measurement. */
  async used(ws: WorkspaceRecord): Promise<number> {
    const hit = this.cache.get(ws.id);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.bytes;
    const failed = this.changing.get(ws.id);
    if (failed && this.now() - failed.at < Math.min(CHANGING_TTL_MS, this.ttlMs)) {
      // Its own error each time: the first one's log fields (the helper's words) are not logged again.
      throw new BayError(failed.error.code, failed.error.message, {
        details: { ...failed.error.details },
        internal: { operation: "workspace usage", answered_again: "the workspace kept changing under du less than a second ago" },
      });
    }
    let p = this.inflight.get(ws.id);
    if (!p) {
      p = this.deps
        .measure(ws)
        .then(
          (bytes) => {
            this.prune();
            this.changing.delete(ws.id);
            this.cache.set(ws.id, { bytes, at: this.now() });
            this.remember(ws.id, bytes);
            return bytes;
          },
          (e: unknown) => {
            if (isChanging(e)) {
              this.prune();
              this.changing.set(ws.id, { error: e, at: this.now() });
            }
            throw e;
          },
        )
        .finally(() => this.inflight.delete(ws.id));
      this.inflight.set(ws.id, p);
    }
    return p;
  }

  /**
   * As used, but a workspace that cannot be measured now because it keeps changing
   * answers the last figure measured, when there is one (for metrics, not for limits).
   */
  async usedOrLast(ws: WorkspaceRecord): Promise<number> {
    try {
      return await this.used(ws);
    } catch (e) {
      const last = this.last.get(ws.id);
      if (isChanging(e) && last !== undefined) return last;
      throw e;
    }
  }

  async headroom(ws: WorkspaceRecord): Promise<QuotaHeadroom> {
    const usedBytes = await this.used(ws);
    const limitBytes = ws.sizeLimitMb * MiB;
    return { usedBytes, limitBytes, remainingBytes: Math.max(0, limitBytes - usedBytes) };
  }

  /**
   * Writes `bytes` more into the workspace with `put`, within its size limit: a
   * payload_too_large when they do not fit, else `put`, then the bytes counted. The
   * check, the write and the count run alone among this process's writes to the
   * workspace (serially), so two writes that each fit alone cannot both land past it.
   */
  charged<T>(ws: WorkspaceRecord, bytes: number, put: () => Promise<T>): Promise<T> {
    return this.serially(ws.id, async () => {
      await this.assertFits(ws, bytes);
      const out = await put();
      this.added(ws.id, bytes);
      return out;
    });
  }

  /** Throws payload_too_large when `bytes` more would exceed the workspace's limit. */
  private async assertFits(ws: WorkspaceRecord, bytes: number): Promise<void> {
    const headroom = await this.headroom(ws);
    if (bytes > headroom.remainingBytes) throw quotaError(ws, headroom, bytes);
  }

  /**
   * Runs `fn` (a write's check of the size limit, the write, and its `added`) alone
   * among this process's writes to the workspace, so two writes that each fit alone
   * cannot both land past the limit between one's check and the other's `added`
   * (review s41: three concurrent 3 MiB uploads all landed in a 4 MiB workspace).
   * Writes to other workspaces are not held up. Across replicas of Bay each may still
   * pass one write that the other's would have refused.
   */
  private async serially<T>(wsId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(wsId) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    const tail = before.then(() => mine);
    this.tails.set(wsId, tail);
    try {
      await before;
      return await fn();
    } finally {
      done();
      if (this.tails.get(wsId) === tail) this.tails.delete(wsId);
    }
  }

  /** Records bytes written through Bay since the last measurement. */
  added(wsId: string, bytes: number): void {
    const hit = this.cache.get(wsId);
    if (hit) hit.bytes += bytes;
    const last = this.last.get(wsId);
    if (last !== undefined) this.last.set(wsId, last + bytes);
  }

  /** The cached figure (a measurement plus what Bay wrote since) while it is fresh, without measuring; else null. */
  known(wsId: string): number | null {
    const hit = this.cache.get(wsId);
    return hit && this.now() - hit.at < this.ttlMs ? hit.bytes : null;
  }

  /** Drops the cached figure (after a delete, or when the workspace goes away). */
  forget(wsId: string): void {
    this.cache.delete(wsId);
    this.changing.delete(wsId);
  }

  private remember(wsId: string, bytes: number): void {
    this.last.delete(wsId);
    this.last.set(wsId, bytes);
    if (this.last.size > LAST_KEPT) this.last.delete(this.last.keys().next().value!);
  }

  private prune(): void {
    const now = this.now();
    for (const [id, m] of this.cache) if (now - m.at >= this.ttlMs) this.cache.delete(id);
    for (const [id, f] of this.changing) if (now - f.at >= CHANGING_TTL_MS) this.changing.delete(id);
  }
}

/** A measurement du could not finish because the workspace kept changing under it (volume-commands.ts). */
const isChanging = (e: unknown): e is BayError =>
  e instanceof BayError && e.code === "conflict" && (e.details as { reason?: unknown } | undefined)?.reason === "changing";

const mb = (bytes: number) => (bytes / MiB).toFixed(1);

/** The 413 for a write that does not fit; `bytes` undefined when the size was only found while streaming. */
export function quotaError(ws: WorkspaceRecord, headroom: QuotaHeadroom, bytes?: number): BayError {
  const need = bytes === undefined ? `more than ${headroom.remainingBytes} bytes` : `${bytes} bytes`;
  return new BayError(
    "payload_too_large",
    `workspace ${ws.id} size limit exceeded: ${mb(headroom.usedBytes)} MB of ${ws.sizeLimitMb} MB used, this write needs ${need}`,
    {
      details: {
        workspace_id: ws.id,
        used_bytes: headroom.usedBytes,
        limit_bytes: headroom.limitBytes,
        remaining_bytes: headroom.remainingBytes,
        ...(bytes === undefined ? {} : { size: bytes }),
      },
    },
  );
}
