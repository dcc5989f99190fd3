/** Terminal tickets: stored as hashes, redeemed once (see migration 5). */
import type { Database } from "./database.ts";
import { str } from "./rows.ts";

export class TerminalTicketStore {
  constructor(private readonly db: Database) {}

  async insert(t: { hash: string; owner: string; sandboxId: string; now: number; expiresAt: number }): Promise<void> {
    await this.db.execute({
      sql: "INSERT INTO terminal_tickets (ticket_hash, owner, sandbox_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
      args: [t.hash, t.owner, t.sandboxId, t.now, t.expiresAt],
    });
  }

  /**
   * Marks the ticket used and returns whom and what it was for, or null when it
   * is unknown, used or expired. One statement: of several replicas, one wins.
   */
  async redeem(hash: string, now: number): Promise<{ owner: string; sandboxId: string } | null> {
    const rs = await this.db.execute({
      sql: `UPDATE terminal_tickets SET used_at = ?
            WHERE ticket_hash = ? AND used_at IS NULL AND expires_at > ?
            RETURNING owner, sandbox_id`,
      args: [now, hash, now],
    });
    const row = rs.rows[0];
    return row ? { owner: str(row, "owner"), sandboxId: str(row, "sandbox_id") } : null;
  }

  /** Forgets tickets that expired before `before`. */
  async purge(before: number): Promise<number> {
    const rs = await this.db.execute({ sql: "DELETE FROM terminal_tickets WHERE expires_at < ?", args: [before] });
    return rs.rowsAffected;
  }
}
