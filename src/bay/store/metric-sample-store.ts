/**
 * Persistence of metric samples: a running sandbox's use, one row per sandbox and
 * sampling interval (`at`, the interval's start, in ms). Rows are inserted with
 * INSERT OR IGNORE, so replicas sampling the same interval keep one; they are read
 * by window, oldest first, and purged by age.
 */
import type { Row } from "@libsql/client";
import type { Database } from "./database.ts";
import { num, str } from "./rows.ts";

export interface MetricSampleRecord {
  sandboxId: string;
  /** The sampling interval's start, Unix ms. */
  at: number;
  cpuCount: number;
  cpuUsedPct: number;
  memoryUsedBytes: number;
  memoryLimitBytes: number;
  memoryCacheBytes: number;
  diskUsedBytes: number;
  diskLimitBytes: number;
}

/** The most rows one read answers (an hour of 5 s samples is 720). */
export const MAX_SAMPLES_READ = 2000;

function toRecord(row: Row): MetricSampleRecord {
  return {
    sandboxId: str(row, "sandbox_id"),
    at: num(row, "at"),
    cpuCount: num(row, "cpu_count"),
    cpuUsedPct: num(row, "cpu_used_pct"),
    memoryUsedBytes: num(row, "memory_used_bytes"),
    memoryLimitBytes: num(row, "memory_limit_bytes"),
    memoryCacheBytes: num(row, "memory_cache_bytes"),
    diskUsedBytes: num(row, "disk_used_bytes"),
    diskLimitBytes: num(row, "disk_limit_bytes"),
  };
}

const INSERT = `INSERT OR IGNORE INTO metric_samples
  (sandbox_id, at, cpu_count, cpu_used_pct, memory_used_bytes, memory_limit_bytes, memory_cache_bytes, disk_used_bytes, disk_limit_bytes)
  VALUES (:sandboxId, :at, :cpuCount, :cpuUsedPct, :memoryUsedBytes, :memoryLimitBytes, :memoryCacheBytes, :diskUsedBytes, :diskLimitBytes)`;

/** A running sandbox to sample: its ready session's container, its profile and workspace. */
export interface SampleTarget {
  sessionId: string;
  sandboxId: string;
  containerId: string;
  profileId: string;
  workspaceId: string;
  workspaceSizeLimitMb: number;
}

const TARGETS = `SELECT ss.id AS session_id, sb.id AS sandbox_id, ss.container_id, sb.profile_id,
    w.id AS workspace_id, w.size_limit_mb
  FROM sessions ss JOIN sandboxes sb ON sb.id = ss.sandbox_id JOIN workspaces w ON w.id = sb.workspace_id
  WHERE ss.status = 'ready' AND ss.container_id IS NOT NULL AND sb.deleted_at IS NULL AND sb.current_session_id = ss.id`;

export class MetricSampleStore {
  constructor(private readonly db: Database) {}

  /** Every running sandbox to sample, in one query. */
  async targets(): Promise<SampleTarget[]> {
    const rs = await this.db.execute(TARGETS);
    return rs.rows.map((row) => ({
      sessionId: str(row, "session_id"),
      sandboxId: str(row, "sandbox_id"),
      containerId: str(row, "container_id"),
      profileId: str(row, "profile_id"),
      workspaceId: str(row, "workspace_id"),
      workspaceSizeLimitMb: num(row, "size_limit_mb"),
    }));
  }

  /** Writes the samples in one transaction; a sandbox's interval already written keeps its first row. */
  async insert(samples: MetricSampleRecord[]): Promise<void> {
    if (samples.length === 0) return;
    await this.db.batch(
      samples.map((s) => ({ sql: INSERT, args: { ...s } })),
      "write",
    );
  }

  /** A sandbox's samples with `from` ≤ at ≤ `to` (Unix ms), oldest first, at most MAX_SAMPLES_READ (the newest). */
  async list(sandboxId: string, from: number, to: number): Promise<MetricSampleRecord[]> {
    const rs = await this.db.execute({
      sql: `SELECT * FROM (SELECT * FROM metric_samples WHERE sandbox_id = :sandboxId AND at >= :from AND at <= :to
              ORDER BY at DESC LIMIT :limit) ORDER BY at ASC`,
      args: { sandboxId, from, to, limit: MAX_SAMPLES_READ },
    });
    return rs.rows.map(toRecord);
  }

  /** Deletes samples taken before `before` (Unix ms); the rows deleted. */
  async purgeBefore(before: number): Promise<number> {
    const rs = await this.db.execute({ sql: "DELETE FROM metric_samples WHERE at < :before", args: { before } });
    return rs.rowsAffected;
  }
}
