/**
 * What the E2B-compatible API keeps beside Bay's own sandbox row: the template
 * asked for, metadata and the sandbox-wide environment. A sandbox made through
 * /v1 has no row here and reads as its profile with empty metadata.
 */
import type { Row } from "@libsql/client";
import type { Database } from "../store/database.ts";
import { num, str } from "../store/rows.ts";

export interface E2bSandboxRecord {
  sandboxId: string;
  owner: string;
  templateId: string;
  metadata: Record<string, string>;
  envVars: Record<string, string>;
  /** Whether the sandbox's hosts answer without its traffic token (E2B's `network.allowPublicTraffic`). */
  publicTraffic: boolean;
  createdAt: number;
}

function toRecord(row: Row): E2bSandboxRecord {
  return {
    sandboxId: str(row, "sandbox_id"),
    owner: str(row, "owner"),
    templateId: str(row, "template_id"),
    metadata: JSON.parse(str(row, "metadata")) as Record<string, string>,
    envVars: JSON.parse(str(row, "env_vars")) as Record<string, string>,
    publicTraffic: num(row, "public_traffic") === 1,
    createdAt: num(row, "created_at"),
  };
}

export class E2bSandboxStore {
  private secret: Promise<string> | null = null;
  constructor(private readonly db: Database) {}

  async insert(r: E2bSandboxRecord): Promise<void> {
    await this.db.execute({
      sql: "INSERT INTO e2b_sandboxes (sandbox_id, owner, template_id, metadata, env_vars, public_traffic, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      args: [
        r.sandboxId,
        r.owner,
        r.templateId,
        JSON.stringify(r.metadata),
        JSON.stringify(r.envVars),
        r.publicTraffic ? 1 : 0,
        r.createdAt,
      ],
    });
  }

  async get(owner: string, sandboxId: string): Promise<E2bSandboxRecord | null> {
    const rs = await this.db.execute({ sql: "SELECT * FROM e2b_sandboxes WHERE sandbox_id = ? AND owner = ?", args: [sandboxId, owner] });
    return rs.rows[0] ? toRecord(rs.rows[0]) : null;
  }

  /** The rows of these sandboxes (one owner's), by sandbox id. */
  async getMany(owner: string, sandboxIds: string[]): Promise<Map<string, E2bSandboxRecord>> {
    const out = new Map<string, E2bSandboxRecord>();
    if (sandboxIds.length === 0) return out;
    const rs = await this.db.execute({
      sql: `SELECT * FROM e2b_sandboxes WHERE owner = ? AND sandbox_id IN (${sandboxIds.map(() => "?").join(", ")})`,
      args: [owner, ...sandboxIds],
    });
    for (const row of rs.rows) {
      const r = toRecord(row);
      out.set(r.sandboxId, r);
    }
    return out;
  }

  /** Whether this sandbox (any owner's) was created with public traffic; false for sandboxes without a row. */
  async publicTraffic(sandboxId: string): Promise<boolean> {
    const rs = await this.db.execute({ sql: "SELECT public_traffic FROM e2b_sandboxes WHERE sandbox_id = ?", args: [sandboxId] });
    return rs.rows[0] !== undefined && num(rs.rows[0], "public_traffic") === 1;
  }

  /** Ids of live, unexpired sandboxes of every owner, newest first (signed file URLs name none). */
  async liveSandboxIds(limit: number): Promise<string[]> {
    const rs = await this.db.execute({
      sql: "SELECT id FROM sandboxes WHERE deleted_at IS NULL AND expired_at IS NULL ORDER BY id DESC LIMIT ?",
      args: [limit],
    });
    return rs.rows.map((r) => str(r, "id"));
  }

  /** The installation's token key (created by the migration; read once per process). */
  tokenSecret(): Promise<string> {
    this.secret ??= this.db.execute("SELECT secret FROM e2b_secret WHERE id = 1").then((rs) => {
      const row = rs.rows[0];
      if (!row) throw new Error("e2b_secret row is missing");
      return str(row, "secret");
    });
    return this.secret;
  }
}
