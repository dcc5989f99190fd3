/**
 * An embedded libSQL database (a `file:` URL or `:memory:`) on one connection of
 * the `libsql` engine, with its prepared statements kept. `@libsql/client` on a
 * local file prepares every statement again on each call, asks the engine for
 * its columns twice and builds each row with a `defineProperty` per column;
 * for the one-row reads on Bay's hot paths that is ~90 % of a query's time. The
 * engine, the file and the SQL are the same; only the calls around them are cut.
 *
 * Semantics kept from the client (the stores rely on them): named arguments
 * without their `:`/`@`/`$` prefix, `?` arguments as an array, integers as
 * numbers, booleans as 1/0, rows as plain objects by column name, `batch` as one
 * transaction (`write`: BEGIN IMMEDIATE) run to its end without yielding, so no
 * other call of this process interleaves and no lock is held across an await.
 * Calls block the event loop while the engine waits on another process's lock
 * (busy timeout), exactly as the client's local calls do.
 */
import type { InArgs, InStatement, InValue, ResultSet, Row, TransactionMode } from "@libsql/client";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { endianness } from "node:os";
import Engine from "libsql";
import { mapFirstPage, type SharedMap } from "./shared-map.ts";

type Connection = InstanceType<typeof Engine>;
/** A prepared statement and whether it returns rows (asking the engine each time is a native call). */
interface Prepared {
  stmt: ReturnType<Connection["prepare"]>;
  reader: boolean;
  /** A plain SELECT: cannot write (an INSERT … RETURNING is a reader too). */
  pure: boolean;
}

const PURE = /^\s*SELECT\b/i;

/** SQLite's WAL index header: iVersion, unused, iChange, flags and page size, mxFrame, nPage, frame checksum, salts, checksum. */
const WAL_HEADER_BYTES = 48;
/** The smallest `-shm` file mapped: one page (SQLite grows it 32 KiB at a time). */
const SHM_MIN_BYTES = 4096;
/** SQLite writes the WAL index in the machine's own byte order. */
const LE = endianness() === "LE";

/** Statements kept per connection; the SQL Bay runs is a fixed, small set, so this bound is never reached in practice. */
const MAX_STATEMENTS = 512;

/**
 * Open descriptors of `-shm` files, one per file (device and inode) for the whole
 * process, with how many connections read through it. Closing any descriptor of
 * a file drops every POSIX lock this process holds on it, SQLite's shared lock on
 * the WAL index's "DMS" byte included; without that lock the next process to open
 * the database believes it is the first, truncates the `-shm` file and rebuilds
 * the index under this one (a connection writing then dies of SIGBUS). So a
 * descriptor is opened once and closed only after the last of this process's
 * connections reading through it has closed (Bun.mmap opens and closes one of its
 * own, so the header is mapped from this descriptor instead: shared-map.ts). A connection to the same file that never asked for a version is not
 * counted; Bay has one connection per process.
 */
const shmFiles = new Map<string, { fd: number; refs: number; map: SharedMap | null }>();

const BEGIN: Record<TransactionMode, string> = { write: "BEGIN IMMEDIATE", read: "BEGIN", deferred: "BEGIN DEFERRED" };

function toValue(v: InValue | undefined): unknown {
  if (v === undefined) throw new TypeError("undefined is not a valid SQL value (use null)");
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v instanceof Date) return v.valueOf();
  return v;
}

function bindings(args: InArgs | undefined): unknown[] | Record<string, unknown> {
  if (args === undefined) return [];
  if (Array.isArray(args)) return args.map(toValue);
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(args as Record<string, InValue>)) {
    const first = name[0];
    out[first === ":" || first === "@" || first === "$" ? name.slice(1) : name] = toValue(value);
  }
  return out;
}

/** A result in the client's shape (rows by column name, rowsAffected). */
function resultSet(rows: Row[], rowsAffected: number, lastInsertRowid: bigint | undefined): ResultSet {
  return {
    columns: [],
    columnTypes: [],
    rows,
    rowsAffected,
    lastInsertRowid,
    toJSON: () => ({ rows, rowsAffected }),
  };
}

export class LocalDatabase {
  private readonly engine: Connection;
  private readonly statements = new Map<string, Prepared>();
  private isClosed = false;
  /** Statements of this connection that may have written (SQLite's data_version ignores them). */
  private writes = 0;
  private dataVersion: Prepared | null = null;
  /** The `-shm` file this connection reads the WAL index header from (undefined: not looked for yet; null: not in WAL mode). */
  private shm: { key: string; fd: number; map: SharedMap | null } | null | undefined;
  private readonly header = Buffer.alloc(WAL_HEADER_BYTES);

  /** @param path a file path or ":memory:"; `busyTimeoutMs`: how long to wait for another process's lock. */
  constructor(
    private readonly path: string,
    busyTimeoutMs: number,
  ) {
    this.engine = new Engine(path, { timeout: busyTimeoutMs });
    this.engine.exec(`PRAGMA busy_timeout = ${Math.floor(busyTimeoutMs)}`);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  execute(stmt: InStatement): Promise<ResultSet>;
  execute(sql: string, args?: InArgs): Promise<ResultSet>;
  async execute(stmt: InStatement | string, args?: InArgs): Promise<ResultSet> {
    return this.run(typeof stmt === "string" ? { sql: stmt, ...(args !== undefined ? { args } : {}) } : stmt);
  }

  /** Runs the statements as one transaction; any failure rolls it back and rejects. */
  async batch(stmts: Array<InStatement | [string, InArgs?]>, mode: TransactionMode = "deferred"): Promise<ResultSet[]> {
    this.writes++;
    this.engine.exec(BEGIN[mode]);
    try {
      const results = stmts.map((s) =>
        this.run(typeof s === "string" ? { sql: s } : Array.isArray(s) ? { sql: s[0], args: s[1] ?? [] } : s),
      );
      this.engine.exec("COMMIT");
      return results;
    } catch (e) {
      if (this.engine.inTransaction) this.engine.exec("ROLLBACK");
      throw e;
    }
  }

  /**
   * The first row of a query, or null: one call into the engine instead of the
   * three or more that collecting every row takes (the stores' single-row reads).
   */
  async one(stmt: Exclude<InStatement, string>): Promise<Row | null> {
    if (this.isClosed) throw new Error("the database is closed");
    const prepared = this.prepare(stmt.sql);
    if (!prepared.pure) this.writes++;
    return (prepared.stmt.get(bindings(stmt.args)) as Row | undefined) ?? null;
  }

  /**
   * Changes whenever the database may have changed: this connection wrote, or
   * another connection or process committed. Rows read after taking a version
   * are current for as long as it stays the same.
   *
   * In WAL mode it is read from the WAL index header in the `-shm` file, through
   * a shared mapping of this process's own descriptor (no system call; a pread
   * where it cannot be mapped; no lock either way): every commit of every process rewrites that
   * header (its change counter, last frame and salts) before any reader can see
   * the commit. Otherwise `PRAGMA data_version`, a statement (two file-lock calls).
   * The `-shm` descriptor is kept open for the connection's life (see `shmFiles`).
   */
  version(): string {
    if (this.isClosed) throw new Error("the database is closed");
    if (this.shm === undefined) this.shm = this.openShm();
    // The header's first copy, the same shared page SQLite maps, no lock taken: read
    // through this process's own mapping of it, else with one pread.
    const map = this.shm?.map;
    if (map) {
      const v = map.view;
      return `${this.writes}:${v.getUint32(8, LE)}:${v.getUint32(16, LE)}:${v.getUint32(32, LE)}:${v.getUint32(36, LE)}`;
    }
    if (this.shm && readSync(this.shm.fd, this.header, 0, WAL_HEADER_BYTES, 0) === WAL_HEADER_BYTES) {
      const h = this.header;
      const u32 = (at: number) => (LE ? h.readUInt32LE(at) : h.readUInt32BE(at));
      return `${this.writes}:${u32(8)}:${u32(16)}:${u32(32)}:${u32(36)}`;
    }
    this.dataVersion ??= this.prepare("PRAGMA data_version");
    const row = this.dataVersion.stmt.get([]) as { data_version: number };
    return `${this.writes}:${row.data_version}`;
  }

  /** Where version() reads from: the mapped WAL index header, a pread of it, or SQLite's data_version. */
  versionSource(): "map" | "pread" | "data_version" {
    if (this.shm === undefined) this.version();
    return this.shm?.map ? "map" : this.shm ? "pread" : "data_version";
  }

  /** This process's descriptor of the `-shm` file (shared by its connections to it), or null when there is none. */
  private openShm(): { key: string; fd: number; map: SharedMap | null } | null {
    if (this.path === ":memory:" || this.path === "") return null;
    const mode = this.engine.prepare("PRAGMA journal_mode").get([]) as { journal_mode?: string } | undefined;
    const shm = `${this.path}-shm`;
    if (mode?.journal_mode !== "wal" || !existsSync(shm)) return null;
    try {
      // Identified by stat, not by opening: a descriptor opened and closed again would drop the locks.
      const { dev, ino } = statSync(shm);
      const key = `${dev}:${ino}`;
      let open = shmFiles.get(key);
      if (open) open.refs++;
      else {
        const fd = openSync(shm, "r");
        // SQLite's index is at least a page (32 KiB) while any connection has it open, and this one does.
        open = { fd, refs: 1, map: statSync(shm).size >= SHM_MIN_BYTES ? mapFirstPage(fd, WAL_HEADER_BYTES) : null };
        shmFiles.set(key, open);
      }
      return { key, fd: open.fd, map: open.map };
    } catch {
      return null;
    }
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.statements.clear();
    this.engine.close();
    // After the engine: with this process's last connection to the file gone, it holds no lock there to lose.
    const open = this.shm ? shmFiles.get(this.shm.key) : undefined;
    if (open && --open.refs === 0) {
      shmFiles.delete(this.shm!.key);
      open.map?.unmap();
      closeSync(open.fd);
    }
  }

  private run(stmt: Exclude<InStatement, string>): ResultSet {
    if (this.isClosed) throw new Error("the database is closed");
    const prepared = this.prepare(stmt.sql);
    if (!prepared.pure) this.writes++;
    const bound = bindings(stmt.args);
    if (prepared.reader) {
      const rows = prepared.stmt.all(bound) as Row[];
      return resultSet(rows, rows.length, undefined);
    }
    const info = prepared.stmt.run(bound) as { changes: number; lastInsertRowid: number | bigint };
    return resultSet([], info.changes, BigInt(info.lastInsertRowid ?? 0));
  }

  private prepare(sql: string): Prepared {
    let p = this.statements.get(sql);
    if (!p) {
      if (this.statements.size >= MAX_STATEMENTS) {
        this.statements.clear();
        this.dataVersion = null;
      }
      const stmt = this.engine.prepare(sql);
      p = { stmt, reader: stmt.reader, pure: PURE.test(sql) };
      this.statements.set(sql, p);
    }
    return p;
  }
}
