/**
 * Rows this process read, kept for as long as nothing can have changed them:
 * an entry is served only while the database's change version is the one read
 * with it. The version (LocalDatabase.version) moves with every write of this
 * process and every commit of any other connection or process on the same file
 * (the WAL index header, or SQLite's `data_version`), so a replica's stop or delete
 * is seen at once, not after a TTL. Checking it is one pread instead of the read
 * it saves (on `GET /v1/sandboxes/{id}` the read was most of Bay's CPU).
 *
 * A database that cannot say (a libSQL server) has no version: nothing is cached.
 * Entries are frozen, so no caller can change what the next one is served.
 */
import type { Database } from "./database.ts";

/** A database that can tell whether anything was written since a version was taken. */
export interface Versioned {
  /** Changes whenever anything may have been written; read it before the rows it guards. */
  version(): string;
}

const isVersioned = (db: Database): db is Database & Versioned => typeof (db as Partial<Versioned>).version === "function";

export class ReadCache<T extends object> {
  private readonly entries = new Map<string, { value: T; version: string }>();
  private readonly db: (Database & Versioned) | null;

  constructor(
    db: Database,
    private readonly maxEntries = 10_000,
  ) {
    this.db = isVersioned(db) ? db : null;
  }

  /**
   * The cached value for `key` while the database is unchanged and `stillValid`
   * holds for it (time-dependent conditions), else `read()`'s, remembered when not null.
   */
  async get(key: string, read: () => Promise<T | null>, stillValid: (value: T) => boolean): Promise<T | null> {
    if (!this.db) return read();
    // Taken before the read: a commit landing between the two makes the entry stale at once, never valid.
    const version = this.db.version();
    const hit = this.entries.get(key);
    if (hit && hit.version === version && stillValid(hit.value)) return hit.value;
    const value = await read();
    if (value === null) this.entries.delete(key);
    else {
      if (this.entries.size >= this.maxEntries) this.entries.clear();
      this.entries.set(key, { value: deepFreeze(value), version });
    }
    return value;
  }
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v && typeof v === "object" && !Object.isFrozen(v)) deepFreeze(v);
  return Object.freeze(value);
}
