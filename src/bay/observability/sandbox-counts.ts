/**
 * Live sandboxes per profile and status for the `bay_sandboxes` gauge. The
 * numbers are the database's (shared by every replica), read with one grouped
 * query over live rows (warm-pool members are not sandboxes yet: bay_warm_pool_size
 * counts them) and cached for `ttlMs`, so however often and however
 * many scrapers ask, the database sees at most one such query per interval.
 */
import type { Database } from "../store/database.ts";
import { POOL_OWNER, SANDBOX_STATUSES, STATUS_SQL, type SandboxStatus } from "../domain/lifecycle.ts";

export { SANDBOX_STATUSES };

export interface SandboxCount {
  profile: string;
  status: SandboxStatus;
  count: number;
}

const QUERY = `SELECT s.profile_id AS profile, ${STATUS_SQL} AS status, COUNT(*) AS n
  FROM sandboxes s LEFT JOIN sessions ss ON ss.id = s.current_session_id
  WHERE s.deleted_at IS NULL AND s.owner <> '${POOL_OWNER}'
  GROUP BY profile, status`;

export class SandboxCounts {
  private cached: { at: number; counts: SandboxCount[] } | null = null;
  private inflight: Promise<SandboxCount[]> | null = null;

  constructor(
    private readonly db: Database,
    private readonly ttlMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The counts, at most `ttlMs` old; concurrent callers share one query. */
  async read(): Promise<SandboxCount[]> {
    const now = this.now();
    if (this.cached && now - this.cached.at < this.ttlMs) return this.cached.counts;
    this.inflight ??= this.query(now).finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async query(now: number): Promise<SandboxCount[]> {
    const rs = await this.db.execute({ sql: QUERY, args: { now } });
    const counts = rs.rows.map((r) => ({ profile: String(r.profile), status: String(r.status) as SandboxStatus, count: Number(r.n) }));
    this.cached = { at: now, counts };
    return counts;
  }
}
