/**
 * Versioned schema migrations, applied in order at start. Append only: a
 * released migration is never edited. Times are integer milliseconds since epoch.
 */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "initial",
    statements: [
      `CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        managed INTEGER NOT NULL,
        volume_name TEXT NOT NULL,
        size_limit_mb INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        last_accessed_at INTEGER,
        deleted_at INTEGER
      )`,
      `CREATE INDEX workspaces_owner ON workspaces (owner, deleted_at, id)`,
      `CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        idle_expires_at INTEGER,
        current_session_id TEXT,
        last_error TEXT,
        expired_at INTEGER,
        deleted_at INTEGER
      )`,
      `CREATE INDEX sandboxes_owner ON sandboxes (owner, deleted_at, id)`,
      // One live sandbox per workspace, enforced by the database even across replicas.
      `CREATE UNIQUE INDEX sandboxes_one_live_per_workspace ON sandboxes (workspace_id) WHERE deleted_at IS NULL`,
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        sandbox_id TEXT NOT NULL REFERENCES sandboxes (id),
        status TEXT NOT NULL,
        container_id TEXT,
        endpoint TEXT,
        lease_owner TEXT,
        lease_expires_at INTEGER,
        error TEXT,
        created_at INTEGER NOT NULL,
        ready_at INTEGER,
        ended_at INTEGER
      )`,
      `CREATE INDEX sessions_sandbox ON sessions (sandbox_id, status)`,
      `CREATE INDEX sessions_status ON sessions (status)`,
      `CREATE TABLE idempotency_keys (
        owner TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL,
        response_status INTEGER,
        response_body TEXT,
        response_headers TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (owner, key)
      )`,
      `CREATE INDEX idempotency_expires ON idempotency_keys (expires_at)`,
      `CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        name TEXT,
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
      )`,
    ],
  },
  {
    version: 2,
    name: "installation",
    statements: [
      // One row: this database's installation id. Bay labels every container and
      // volume with it (unless configured), so two installations on two databases
      // never mistake each other's objects for orphans.
      `CREATE TABLE installation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        instance_id TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      `INSERT INTO installation (id, instance_id, created_at)
        VALUES (1, 'bay-' || lower(hex(randomblob(6))), CAST(strftime('%s', 'now') AS INTEGER) * 1000)`,
    ],
  },
  {
    version: 3,
    name: "session secret",
    statements: [
      // The secret a session's Ship requires on every call (trust boundary). Kept so
      // that every replica, and Bay after a restart, can still talk to the session.
      "ALTER TABLE sessions ADD COLUMN secret TEXT",
    ],
  },
  {
    version: 4,
    name: "idempotency claim tokens",
    statements: [
      // The holder's token: only it completes or releases its claim.
      "ALTER TABLE idempotency_keys ADD COLUMN token TEXT",
      // The resource the claim created, recorded with it: a retry after a crash answers with it.
      "ALTER TABLE idempotency_keys ADD COLUMN resource_id TEXT",
    ],
  },
  {
    version: 5,
    name: "terminal tickets",
    statements: [
      // Single-use tickets that open a sandbox's terminal from a browser. Only a hash
      // is stored; redeeming is one UPDATE … RETURNING, so one replica wins it.
      `CREATE TABLE terminal_tickets (
        ticket_hash TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        sandbox_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
      )`,
      `CREATE INDEX terminal_tickets_expires ON terminal_tickets (expires_at)`,
    ],
  },
  {
    version: 6,
    name: "warm pool",
    statements: [
      // A warm-pool claim marks the member it takes with a token for the rest of its
      // transaction (workspace owner, idempotency record), then clears it.
      "ALTER TABLE sandboxes ADD COLUMN claim_token TEXT",
      "CREATE INDEX sandboxes_claim_token ON sandboxes (claim_token) WHERE claim_token IS NOT NULL",
    ],
  },
  {
    version: 7,
    name: "e2b-compatible api",
    statements: [
      // What the E2B API keeps about a sandbox beyond Bay's own row: the template it
      // was asked for, its metadata (list filters) and the environment variables every
      // process gets. Sandboxes made through /v1 have no row and read as defaults.
      `CREATE TABLE e2b_sandboxes (
        sandbox_id TEXT PRIMARY KEY REFERENCES sandboxes (id),
        owner TEXT NOT NULL,
        template_id TEXT NOT NULL,
        metadata TEXT NOT NULL,
        env_vars TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      // One row: the key every replica derives a sandbox's envd access and traffic
      // tokens from (HMAC), so no token is stored and all replicas agree.
      `CREATE TABLE e2b_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret TEXT NOT NULL
      )`,
      "INSERT INTO e2b_secret (id, secret) VALUES (1, lower(hex(randomblob(32))))",
    ],
  },
  {
    version: 8,
    name: "e2b public traffic",
    statements: [
      // E2B's network.allowPublicTraffic: whether the sandbox's hosts ({port}-{id}.{domain})
      // answer without its traffic token. Off for every existing sandbox and by default.
      "ALTER TABLE e2b_sandboxes ADD COLUMN public_traffic INTEGER NOT NULL DEFAULT 0",
    ],
  },
  {
    version: 9,
    name: "call covers",
    statements: [
      // One row per call in flight that may outlast its session's idle deadline, on any
      // replica: idle reclaim waits until none is left (or the last one's time is up, when
      // the replica that made it died). A call that ends deletes its own row and resets the
      // idle deadline, never shortening another call's cover.
      `CREATE TABLE call_covers (
        id TEXT PRIMARY KEY,
        sandbox_id TEXT NOT NULL,
        until INTEGER NOT NULL
      )`,
      "CREATE INDEX call_covers_sandbox ON call_covers (sandbox_id, until)",
      "CREATE INDEX call_covers_until ON call_covers (until)",
    ],
  },
  {
    version: 10,
    name: "metric samples",
    statements: [
      // A running sandbox's use, sampled every metrics.sample_interval seconds by any
      // replica: `at` is the start of the interval, so two replicas' samples of one
      // interval are one row (the first written). Kept metrics.history seconds.
      `CREATE TABLE metric_samples (
        sandbox_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        cpu_count REAL NOT NULL,
        cpu_used_pct REAL NOT NULL,
        memory_used_bytes INTEGER NOT NULL,
        memory_limit_bytes INTEGER NOT NULL,
        memory_cache_bytes INTEGER NOT NULL,
        disk_used_bytes INTEGER NOT NULL,
        disk_limit_bytes INTEGER NOT NULL,
        PRIMARY KEY (sandbox_id, at)
      )`,
      "CREATE INDEX metric_samples_at ON metric_samples (at)",
    ],
  },
  {
    version: 11,
    name: "warm-pool fingerprints",
    statements: [
      // What a warm-pool member's container was made from (pool-fingerprint.ts), so that a
      // member made under another configuration is never handed out (review s95 M1). NULL
      // for members made before: retired.
      "ALTER TABLE sandboxes ADD COLUMN pool_fingerprint TEXT",
    ],
  },
  {
    version: 12,
    name: "warm-pool configurations",
    statements: [
      // The configuration each replica runs now, per pooled profile, marked by each of its
      // passes on the database's clock (and forgotten when it stops). Members of a
      // configuration no replica marked lately are retired; another live replica's are left
      // to it, so replicas on two configurations keep a pool each rather than retiring each
      // other's (s97 M2). A migration of its own: 11 was on main before it (review s98 M1);
      // IF NOT EXISTS for a development database made while it was part of 11.
      `CREATE TABLE IF NOT EXISTS pool_configs (
        replica_id TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (replica_id, profile_id)
      )`,
    ],
  },
  {
    version: 13,
    name: "warm-pool sizes per configuration",
    statements: [
      // The pool size each replica keeps for its configuration: two replicas of one
      // configuration with different sizes keep the larger, rather than the smaller one
      // retiring what the larger one made (review s99 M1).
      "ALTER TABLE pool_configs ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
    ],
  },
];
