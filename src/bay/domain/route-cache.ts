/**
 * Where this process last routed each sandbox's calls: the sandbox as read with
 * its ready session, kept for `ttlMs` so back-to-back capability calls do not
 * read the same rows again (on the exec hot path that read was as costly as the
 * call to the Ship itself).
 *
 * Safe to be stale because nothing is trusted from it beyond what a call
 * checks again: the owner must match (else the database is asked: 404 stays
 * 404), an entry past its sandbox's TTL is never used, and a session that
 * another replica ended or replaced fails its call (connection refused, or a
 * Ship refusing the secret: another session's), upon which the router reads the
 * database afresh and forgets the entry. This process forgets an entry itself
 * whenever it ends the sandbox's session, stops or deletes the sandbox.
 */
import type { SandboxRecord } from "../store/sandbox-store.ts";

export class RouteCache {
  private readonly entries = new Map<string, { sb: SandboxRecord; until: number }>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The remembered sandbox of this owner with a ready session, or null (then read the database). */
  get(owner: string, sandboxId: string): SandboxRecord | null {
    const e = this.entries.get(sandboxId);
    if (!e) return null;
    const now = this.now();
    if (e.until <= now || (e.sb.expiresAt !== null && e.sb.expiresAt <= now)) {
      this.entries.delete(sandboxId);
      return null;
    }
    return e.sb.owner === owner ? e.sb : null;
  }

  /** Remembers a sandbox just read whose current session is ready. */
  remember(sb: SandboxRecord): void {
    if (sb.status !== "ready" || sb.session?.status !== "ready") return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(sb.id, { sb, until: this.now() + this.ttlMs });
  }

  /** The idle deadline this process just wrote, so the next call compares against it. */
  noteIdleDeadline(sandboxId: string, idleExpiresAt: number): void {
    const e = this.entries.get(sandboxId);
    if (e) e.sb = { ...e.sb, idleExpiresAt: Math.max(e.sb.idleExpiresAt ?? 0, idleExpiresAt) };
  }

  forget(sandboxId: string): void {
    this.entries.delete(sandboxId);
  }
}
