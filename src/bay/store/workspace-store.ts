/** Persistence of workspaces (Docker volumes mounted at /workspace). */
import type { Row } from "@libsql/client";
import type { Fence } from "./idempotency-store.ts";
import type { Database } from "./database.ts";
import { num, optNum, str } from "./rows.ts";
import { LIVE_COUNT } from "./sandbox-store.ts";

export interface WorkspaceRecord {
  id: string;
  owner: string;
  managed: boolean;
  volumeName: string;
  sizeLimitMb: number;
  createdAt: number;
  lastAccessedAt: number | null;
  deletedAt: number | null;
  /** The live sandbox using it (joined at read time), or null. */
  sandboxId: string | null;
}

const SELECT = `SELECT w.*, (SELECT s.id FROM sandboxes s WHERE s.workspace_id = w.id AND s.deleted_at IS NULL LIMIT 1) AS sandbox_id
  FROM workspaces w`;

/** The owner's live workspace count, for quota conditions (one `?`: the owner). */
const LIVE_WORKSPACES = "(SELECT COUNT(*) FROM workspaces WHERE owner = ? AND deleted_at IS NULL)";

function toRecord(row: Row): WorkspaceRecord {
  return {
    id: str(row, "id"),
    owner: str(row, "owner"),
    managed: num(row, "managed") === 1,
    volumeName: str(row, "volume_name"),
    sizeLimitMb: num(row, "size_limit_mb"),
    createdAt: num(row, "created_at"),
    lastAccessedAt: optNum(row, "last_accessed_at"),
    deletedAt: optNum(row, "deleted_at"),
    sandboxId: row.sandbox_id == null ? null : String(row.sandbox_id),
  };
}

export type NewWorkspace = Pick<WorkspaceRecord, "id" | "owner" | "managed" | "volumeName" | "sizeLimitMb" | "createdAt">;

export class WorkspaceStore {
  constructor(private readonly db: Database) {}

  /** Statement that inserts a workspace, for use inside a batch. */
  insertStatement(w: NewWorkspace) {
    return {
      sql: `INSERT INTO workspaces (id, owner, managed, volume_name, size_limit_mb, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
      args: [w.id, w.owner, w.managed ? 1 : 0, w.volumeName, w.sizeLimitMb, w.createdAt],
    };
  }

  /**
   * Statement that inserts a workspace only while its owner is under the
   * workspace quota and (for a managed one, which comes with a sandbox) the
   * sandbox quota: the count and the insert are one statement.
   */
  insertWithinQuotaStatement(w: NewWorkspace, quota: { maxWorkspaces: number; maxLiveSandboxes?: number }, fence?: Fence) {
    return {
      sql: `INSERT INTO workspaces (id, owner, managed, volume_name, size_limit_mb, created_at)
            SELECT ?, ?, ?, ?, ?, ? WHERE ${LIVE_WORKSPACES} < ? AND ${LIVE_COUNT} < ?${fence ? ` AND ${fence.sql}` : ""}`,
      args: [
        w.id,
        w.owner,
        w.managed ? 1 : 0,
        w.volumeName,
        w.sizeLimitMb,
        w.createdAt,
        w.owner,
        quota.maxWorkspaces,
        w.owner,
        quota.maxLiveSandboxes ?? Number.MAX_SAFE_INTEGER,
        ...(fence?.args ?? []),
      ],
    };
  }

  async insert(w: NewWorkspace): Promise<void> {
    await this.db.execute(this.insertStatement(w));
  }

  /** Live workspaces of an owner (for quotas). */
  async countLive(owner: string): Promise<number> {
    const rs = await this.db.execute({ sql: `SELECT ${LIVE_WORKSPACES} AS n`, args: [owner] });
    return num(rs.rows[0]!, "n");
  }

  /** A live workspace of this owner, or null. */
  async findLive(owner: string, id: string): Promise<WorkspaceRecord | null> {
    const rs = await this.db.execute({ sql: `${SELECT} WHERE w.id = ? AND w.owner = ? AND w.deleted_at IS NULL`, args: [id, owner] });
    return rs.rows[0] ? toRecord(rs.rows[0]) : null;
  }

  async get(id: string): Promise<WorkspaceRecord | null> {
    const rs = await this.db.execute({ sql: `${SELECT} WHERE w.id = ?`, args: [id] });
    return rs.rows[0] ? toRecord(rs.rows[0]) : null;
  }

  async list(q: { owner: string; limit: number; beforeId?: string | undefined }): Promise<{ items: WorkspaceRecord[]; more: boolean }> {
    const rs = await this.db.execute({
      sql: `${SELECT} WHERE w.owner = :owner AND w.deleted_at IS NULL AND (:before IS NULL OR w.id < :before)
            ORDER BY w.id DESC LIMIT :lim`,
      args: { owner: q.owner, before: q.beforeId ?? null, lim: q.limit + 1 },
    });
    const items = rs.rows.map(toRecord);
    return { items: items.slice(0, q.limit), more: items.length > q.limit };
  }

  /**
   * Tombstones a workspace only if no live sandbox uses it, in one statement, so
   * a sandbox being created on it cannot slip in between check and delete.
   */
  async markDeletedIfUnused(id: string, now: number): Promise<boolean> {
    const rs = await this.db.execute({
      sql: `UPDATE workspaces SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM sandboxes s WHERE s.workspace_id = workspaces.id AND s.deleted_at IS NULL)`,
      args: [now, id],
    });
    return rs.rowsAffected === 1;
  }

  async markDeleted(id: string, now: number): Promise<boolean> {
    const rs = await this.db.execute({
      sql: "UPDATE workspaces SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
      args: [now, id],
    });
    return rs.rowsAffected === 1;
  }

  async touch(id: string, now: number): Promise<void> {
    await this.db.execute({ sql: "UPDATE workspaces SET last_accessed_at = ? WHERE id = ?", args: [now, id] });
  }

  /** Volume names of every live workspace (for reconcile). */
  async liveVolumeNames(): Promise<Set<string>> {
    const rs = await this.db.execute("SELECT volume_name FROM workspaces WHERE deleted_at IS NULL");
    return new Set(rs.rows.map((r) => str(r, "volume_name")));
  }
}
