/** The stores over one database, built together by `createStores`. */
import type { Database } from "./database.ts";
import { ApiKeyStore } from "./api-key-store.ts";
import { IdempotencyStore } from "./idempotency-store.ts";
import { InstallationStore } from "./installation-store.ts";
import { MetricSampleStore } from "./metric-sample-store.ts";
import { PoolStore } from "./pool-store.ts";
import { SandboxStore } from "./sandbox-store.ts";
import { SessionStore } from "./session-store.ts";
import { TerminalTicketStore } from "./terminal-ticket-store.ts";
import { WorkspaceStore } from "./workspace-store.ts";

export interface Stores {
  db: Database;
  sandboxes: SandboxStore;
  sessions: SessionStore;
  workspaces: WorkspaceStore;
  idempotency: IdempotencyStore;
  apiKeys: ApiKeyStore;
  installation: InstallationStore;
  terminalTickets: TerminalTicketStore;
  pool: PoolStore;
  metricSamples: MetricSampleStore;
}

export function createStores(db: Database): Stores {
  return {
    db,
    sandboxes: new SandboxStore(db),
    sessions: new SessionStore(db),
    workspaces: new WorkspaceStore(db),
    idempotency: new IdempotencyStore(db),
    apiKeys: new ApiKeyStore(db),
    installation: new InstallationStore(db),
    terminalTickets: new TerminalTicketStore(db),
    pool: new PoolStore(db),
    metricSamples: new MetricSampleStore(db),
  };
}
