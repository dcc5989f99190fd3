/** The installation row: an id generated once per database (see migration 2). */
import type { Database } from "./database.ts";
import { str } from "./rows.ts";

export class InstallationStore {
  constructor(private readonly db: Database) {}

  /** This database's installation id, e.g. `bay-3f9c0a1b2d4e`. */
  async instanceId(): Promise<string> {
    const rs = await this.db.execute("SELECT instance_id FROM installation WHERE id = 1");
    const row = rs.rows[0];
    if (!row) throw new Error("installation row missing: the database was not migrated");
    return str(row, "instance_id");
  }
}
