/**
 * Builds a Bay from configuration: database, driver, managers and the HTTP
 * app. main.ts serves it; tests build the same thing with their own config.
 */
import { join } from "node:path";
import type { Hono } from "hono";
import { createApp } from "./api/app.ts";
import { websocket } from "./api/websocket.ts";
import { UploadSpool } from "./api/upload-spool.ts";
import type { AppDeps } from "./api/deps.ts";
import type { BayConfig } from "./config.ts";
import { ApiKeyService } from "./domain/auth/api-keys.ts";
import { reservedOwnerPrefixes } from "./domain/auth/owners.ts";
import { JwtVerifier } from "./domain/auth/jwt-verifier.ts";
import { CapabilityRouter } from "./domain/capability-router.ts";
import { HealthService } from "./domain/health-service.ts";
import { PoolManager } from "./domain/pool-manager.ts";
import { ProfileRegistry } from "./domain/profiles.ts";
import { MetricsSampler } from "./domain/metrics-sampler.ts";
import { Reaper } from "./domain/reaper.ts";
import { Reconciler } from "./domain/reconciler.ts";
import { RouteCache } from "./domain/route-cache.ts";
import { SandboxContexts } from "./domain/sandbox-contexts.ts";
import { SandboxExec } from "./domain/sandbox-exec.ts";
import { SandboxFiles } from "./domain/sandbox-files.ts";
import { SandboxManager } from "./domain/sandbox-manager.ts";
import { SandboxProcesses } from "./domain/sandbox-processes.ts";
import { SandboxTerminal } from "./domain/sandbox-terminal.ts";
import { SandboxMetrics } from "./domain/sandbox-metrics.ts";
import { type OperationSpec, operations } from "./api/generated/index.ts";
import { bayRoutes } from "./domain/port-locations.ts";
import { SandboxPorts } from "./domain/sandbox-ports.ts";
import { SandboxWatch } from "./domain/sandbox-watch.ts";
import { SessionManager } from "./domain/session-manager.ts";
import { WorkspaceFiles } from "./domain/workspace-files.ts";
import { WorkspaceManager } from "./domain/workspace-manager.ts";
import { DockerDriver } from "./drivers/docker/docker-driver.ts";
import type { Driver } from "./drivers/driver.ts";
import { createLogger, type Logger } from "./logger.ts";
import { BayMetrics } from "./observability/bay-metrics.ts";
import { MeteredShipClient } from "./observability/metered-ship-client.ts";
import { ShipChannels } from "./runtime/ship-channel.ts";
import { SandboxCounts } from "./observability/sandbox-counts.ts";
import { openDatabase } from "./store/database.ts";
import { createStores } from "./store/index.ts";

export interface Bay {
  app: Hono;
  /** Bun.serve's `websocket` option (the terminal); serve it with `fetch: app.fetch`. */
  websocket: typeof websocket;
  deps: AppDeps;
  driver: Driver;
  sessions: SessionManager;
  /** The label value naming this installation's containers and volumes. */
  instanceId: string;
  /** Lifecycle beat (idle reclaim, TTL expiry, reconcile); main.ts starts it, tests call runOnce(). */
  reaper: Reaper;
  /** Samples running sandboxes for their metrics history; main.ts starts it. */
  metricsSampler: MetricsSampler;
  /** Docker ↔ database reconcile; main.ts runs it once at start, the reaper on every beat. */
  reconciler: Reconciler;
  /** The warm pool; main.ts starts its beat (a no-op when every profile's size is 0). */
  pool: PoolManager;
  /** Stops the reaper, then releases the database and driver. */
  close(): Promise<void>;
}

export interface BuildOptions {
  logger?: Logger;
  driver?: Driver;
  hostEnv?: Record<string, string | undefined>;
  /** The lifecycle's clock (sessions, deadlines, TTLs, reaper, reconcile); tests move it instead of waiting. */
  now?: () => number;
}

/** The Docker driver of `config`; `instanceId` names this installation's directory of Ship sockets (unix_socket mode). */
export function createDriver(config: BayConfig, instanceId = config.driver.instance_id ?? "default"): DockerDriver {
  return new DockerDriver({
    ...(config.driver.host ? { host: config.driver.host } : { socketPath: config.driver.socket_path }),
    connectMode: config.driver.connect_mode,
    ...(config.driver.network ? { network: config.driver.network } : {}),
    socketDir: join(config.driver.socket_dir, `bay-${instanceId}`),
    defaultPidsLimit: 256,
    callTimeoutMs: config.driver.call_timeout * 1000,
    volumeFiles: {
      helperImage: config.driver.helper_image,
      callTimeoutMs: config.driver.call_timeout * 1000,
      commandTimeoutMs: config.driver.helper_timeout * 1000,
    },
  });
}

export async function buildBay(config: BayConfig, opts: BuildOptions = {}): Promise<Bay> {
  const logger = opts.logger ?? createLogger(config.log.level, undefined, config.log.format);
  const db = await openDatabase({
    url: config.database.url,
    authToken: config.database.auth_token,
    callDeadlineMs: config.database.call_timeout * 1000,
  });
  const stores = createStores(db);
  const instanceId = config.driver.instance_id ?? (await stores.installation.instanceId());
  const driver = opts.driver ?? createDriver(config, instanceId);
  const now = opts.now ?? Date.now;
  const counts = new SandboxCounts(db, config.metrics.cache_seconds * 1000);
  let pool: PoolManager | null = null;
  const channels = config.driver.ship_channel ? new ShipChannels() : null;
  const metrics = new BayMetrics({
    shipChannels: () => channels?.size ?? 0,
    version: config.server.version,
    profiles: config.profiles.map((p) => p.id),
    sandboxCounts: () => counts.read(),
    warmPool: { size: (profile) => pool?.size(profile) ?? 0 },
    logger,
  });
  const ship = new MeteredShipClient(metrics, fetch, channels);
  const profiles = new ProfileRegistry(config.profiles);
  const replicaId = `replica-${crypto.randomUUID()}`;
  const routes = new RouteCache(30_000, 10_000, now);
  const sessions = new SessionManager(
    { stores, driver, ship, profiles, logger, metrics, routes },
    {
      instanceId,
      replicaId,
      readyTimeoutMs: config.driver.ready_timeout * 1000,
      hostEnv: opts.hostEnv ?? {},
      maxUploadBytes: config.limits.max_upload_bytes,
      logs: { maxSizeMb: config.driver.log_max_size_mb, maxFiles: config.driver.log_max_files },
      maxLiveSessions: config.limits.max_live_sessions,
      maxStartsPerOwner: config.limits.max_concurrent_starts_per_owner,
      now,
    },
  );
  const limits = {
    maxSandboxesPerOwner: config.limits.max_sandboxes_per_owner,
    maxWorkspacesPerOwner: config.limits.max_workspaces_per_owner,
    workspaceSizeLimitMb: config.limits.workspace_size_limit_mb,
  };
  pool = new PoolManager(
    { stores, sessions, driver, profiles, logger, metrics, now },
    {
      replicaId,
      concurrency: config.lifecycle.warm_pool_concurrency,
      maxLiveSessions: config.limits.max_live_sessions,
      workspaceSizeLimitMb: config.limits.workspace_size_limit_mb,
      maxSandboxesPerOwner: config.limits.max_sandboxes_per_owner,
      maxWorkspacesPerOwner: config.limits.max_workspaces_per_owner,
    },
  );
  const sandboxes = new SandboxManager({ stores, sessions, driver, profiles, logger, limits, pool, routes, now });
  const workspaces = new WorkspaceManager({
    stores,
    driver,
    logger,
    defaultSizeLimitMb: config.limits.workspace_size_limit_mb,
    maxSizeLimitMb: config.limits.max_workspace_size_limit_mb,
    maxWorkspacesPerOwner: config.limits.max_workspaces_per_owner,
    now,
  });
  const workspaceFiles = new WorkspaceFiles({
    stores,
    files: driver.volumeFiles,
    instanceId,
    limits: {
      maxFileBytes: config.limits.max_file_bytes,
      maxUploadBytes: config.limits.max_upload_bytes,
      listingTimeoutMs: config.limits.listing_timeout * 1000,
    },
    now,
  });
  const router = new CapabilityRouter({
    stores,
    sessions,
    ship,
    profiles,
    logger,
    routes,
    now,
    maxOpenStreamsPerOwner: config.limits.max_open_streams_per_owner,
  });
  const sandboxFiles = new SandboxFiles({
    router,
    workspaceFiles,
    maxFileBytes: config.limits.max_file_bytes,
    maxUploadBytes: config.limits.max_upload_bytes,
  });
  const sandboxExec = new SandboxExec(router);
  const sandboxContexts = new SandboxContexts(router);
  const sandboxProcesses = new SandboxProcesses(router);
  const sandboxTerminal = new SandboxTerminal({ router, stores });
  const sandboxWatch = new SandboxWatch(router);
  const sandboxPorts = new SandboxPorts({
    router,
    maxBodyBytes: config.limits.max_upload_bytes,
    hosts: [...config.server.allowed_hosts, config.server.host],
    bayRoute: bayRoutes([...credentialedRoutePrefixes(), config.e2b.prefix]),
  });
  const sandboxMetrics = new SandboxMetrics({
    sandboxes,
    stores,
    profiles,
    driver,
    diskUsed: (ws) => workspaceFiles.usage.usedOrLast(ws),
    historySeconds: config.metrics.history,
    now,
  });
  const metricsSampler = new MetricsSampler(
    {
      stores,
      driver,
      profiles,
      diskKnown: (workspaceId) => workspaceFiles.usage.known(workspaceId),
      diskMeasure: (ws) => workspaceFiles.usage.used(ws),
      logger,
      now,
    },
    { intervalSeconds: config.metrics.sample_interval, historySeconds: config.metrics.history },
  );
  const uploadSpool = new UploadSpool({
    maxBytes: config.limits.max_spool_bytes,
    maxBytesPerOwner: spoolShare(config.limits),
    ...(config.limits.spool_dir ? { baseDir: config.limits.spool_dir } : {}),
  });
  const health = new HealthService({ db, driver, profiles, version: config.server.version, logger, now });
  const apiKeys = new ApiKeyService(
    stores.apiKeys,
    config.auth.api_keys,
    now,
    config.auth.api_key_cache_seconds * 1000,
    reservedOwnerPrefixes(config.auth.jwt.owner_prefix),
  );
  const jwtOpts = {
    secret: config.auth.jwt.secret,
    jwksUrl: config.auth.jwt.jwks_url,
    issuer: config.auth.jwt.issuer,
    audience: config.auth.jwt.audience,
    requireExp: config.auth.jwt.require_exp,
    ownerPrefix: config.auth.jwt.owner_prefix,
    logger,
  };
  const jwt = JwtVerifier.configured(jwtOpts) ? new JwtVerifier(jwtOpts) : null;
  const reconciler = new Reconciler({ stores, driver, sessions, logger, instanceId, metrics, now });
  const reaper = new Reaper(
    { stores, driver, sessions, reconciler, logger, metrics, pool, now },
    { intervalSeconds: config.lifecycle.reaper_interval, expiredWorkspace: config.lifecycle.expired_workspace },
  );
  const deps: AppDeps = {
    config,
    stores,
    profiles,
    sandboxes,
    sandboxExec,
    sandboxContexts,
    sandboxFiles,
    sandboxProcesses,
    sandboxTerminal,
    sandboxWatch,
    sandboxPorts,
    sandboxMetrics,
    uploadSpool,
    workspaces,
    workspaceFiles,
    router,
    health,
    apiKeys,
    jwt,
    logger,
    metrics,
  };
  return {
    app: createApp(deps),
    websocket,
    deps,
    driver,
    sessions,
    instanceId,
    reaper,
    reconciler,
    pool,
    metricsSampler,
    async close() {
      await reaper.stop();
      await metricsSampler.stop();
      await pool.stop();
      channels?.closeAll();
      await driver.close();
      db.close();
    },
  };
}

/** One owner's share of the upload spool: as configured, else half of it but at least one largest upload (never more than all of it). */
export function spoolShare(
  limits: Pick<BayConfig["limits"], "max_spool_bytes" | "max_spool_bytes_per_owner" | "max_upload_bytes">,
): number {
  const share = limits.max_spool_bytes_per_owner ?? Math.max(Math.floor(limits.max_spool_bytes / 2), limits.max_upload_bytes);
  return Math.min(share, limits.max_spool_bytes);
}

/** The fixed start of every route of Bay's that takes credentials (`/v1/sandboxes`, `/mcp`, …), from the spec. */
function credentialedRoutePrefixes(): string[] {
  return (Object.values(operations) as OperationSpec[])
    .filter((op) => op.authenticated)
    .map((op) => op.honoPath.split("/:")[0]!.split("/*")[0]!);
}
