/**
 * Bay's metrics: every family it exposes on GET /metrics, and one typed method
 * per event that feeds them. Names are prefixed `bay_`; labels come from
 * bounded sets only (route templates, HTTP methods and statuses, profile ids,
 * fixed reasons), never from owners or resource ids.
 */
import type { ReapReport } from "../domain/reaper.ts";
import type { ReconcileReport } from "../domain/reconciler.ts";
import { errorMessage, type Logger } from "../logger.ts";
import { Counter, Gauge, Histogram, MetricsRegistry } from "./metrics-registry.ts";
import { SANDBOX_STATUSES, type SandboxCount } from "./sandbox-counts.ts";

/** How a session came to be: started on demand, or claimed from the warm pool. */
export type StartKind = "cold" | "pool";
export type ShipErrorReason = "unreachable" | "connection_lost" | "timeout" | "bad_response" | "wrong_session";

/**
 * Where the warm pool reports its size. The pool does not exist yet, so every
 * profile reads 0; when it lands, it passes its own WarmPoolStats to BayMetrics
 * (bootstrap.ts) and claims report `sessionStarted(profile, "pool", …)`.
 */
export interface WarmPoolStats {
  /** Started, unclaimed sessions of `profile` right now. */
  size(profile: string): number;
}
export const NO_WARM_POOL: WarmPoolStats = { size: () => 0 };

export interface BayMetricsOptions {
  version: string;
  profiles: readonly string[];
  /** Live sandboxes by profile and status (the database's numbers, cached). */
  sandboxCounts?: () => Promise<SandboxCount[]>;
  warmPool?: WarmPoolStats;
  /** Call channels open to Ships from this process (src/bay/runtime/ship-channel.ts). */
  shipChannels?: () => number;
  logger?: Logger;
}

const HTTP_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const SECONDS = 1000;

const REAPER_ACTIONS: Array<[keyof ReapReport, string]> = [
  ["idleReclaimed", "idle_reclaimed"],
  ["expired", "expired"],
  ["workspacesDeleted", "workspace_deleted"],
  ["idempotencyPurged", "idempotency_purged"],
];
const RECONCILE_ACTIONS: Array<[keyof ReconcileReport, string]> = [
  ["abandonedStarts", "abandoned_start"],
  ["deadSessions", "dead_session"],
  ["strandedSessions", "stranded_session"],
  ["orphanContainers", "orphan_container"],
  ["orphanVolumes", "orphan_volume"],
  ["staleHelpers", "stale_helper"],
];

export class BayMetrics {
  readonly registry = new MetricsRegistry();
  private readonly requests = this.registry.register(
    new Counter("bay_http_requests_total", "HTTP requests answered, by route template and status.", ["method", "route", "status"]),
  );
  private readonly requestSeconds = this.registry.register(
    new Histogram(
      "bay_http_request_duration_seconds",
      "Time from receiving a request to its response headers, by route template and status.",
      ["method", "route", "status"],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    ),
  );
  private readonly inFlight = this.registry.register(new Gauge("bay_http_requests_in_flight", "Requests being served right now."));
  private readonly sandboxes = this.registry.register(
    new Gauge("bay_sandboxes", "Live (not deleted) sandboxes by profile and computed status; from the database, shared by replicas.", [
      "profile",
      "status",
    ]),
  );
  private readonly starts = this.registry.register(
    new Counter("bay_sandbox_starts_total", "Session starts by profile, kind (cold: on demand, pool: warm pool claim) and outcome.", [
      "profile",
      "kind",
      "outcome",
    ]),
  );
  private readonly startSeconds = this.registry.register(
    new Histogram(
      "bay_sandbox_start_duration_seconds",
      "Time to a ready Ship (container created, started, health and /meta checked), by profile and kind.",
      ["profile", "kind"],
      [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    ),
  );
  private readonly shipErrors = this.registry.register(
    new Counter("bay_ship_errors_total", "Calls to a Ship that failed in transport or answered garbage, by reason.", ["reason"]),
  );
  private readonly reaperActions = this.registry.register(
    new Counter("bay_reaper_actions_total", "What the reaper did, by action.", ["action"]),
  );
  private readonly reconcileActions = this.registry.register(
    new Counter("bay_reconcile_actions_total", "What reconcile repaired, by action.", ["action"]),
  );
  private readonly beatErrors = this.registry.register(
    new Counter("bay_lifecycle_step_errors_total", "Reaper and reconcile steps that failed (retried on the next beat).", ["beat"]),
  );
  private readonly replays = this.registry.register(
    new Counter("bay_idempotency_replays_total", "Create requests answered from a stored Idempotency-Key response."),
  );
  private readonly poolSize = this.registry.register(
    new Gauge("bay_warm_pool_size", "Started, unclaimed warm-pool sessions by profile (0 until the warm pool exists).", ["profile"]),
  );
  private readonly channels = this.registry.register(
    new Gauge("bay_ship_channels_open", "Call channels (one WebSocket per Ship) this process holds open."),
  );
  private readonly collectErrors = this.registry.register(
    new Counter("bay_metrics_collect_errors_total", "Scrape-time collectors that failed (their family is left out of that scrape).", [
      "collector",
    ]),
  );
  private readonly rss = this.registry.register(new Gauge("bay_process_resident_memory_bytes", "Resident memory of this Bay process."));
  private readonly startTime = this.registry.register(
    new Gauge("bay_process_start_time_seconds", "When this Bay process started, in seconds since the epoch."),
  );
  private readonly buildInfo = this.registry.register(
    new Gauge("bay_build_info", "Always 1; the version label names the build.", ["version"]),
  );

  constructor(private readonly opts: BayMetricsOptions) {
    this.buildInfo.set({ version: opts.version }, 1);
    this.startTime.set(undefined, Math.floor((Date.now() - performance.now()) / SECONDS));
    // Series that exist before their first event, so rate() and absent() work from the first scrape.
    for (const profile of opts.profiles) {
      for (const kind of ["cold", "pool"] as const) {
        for (const outcome of ["ok", "failed"] as const) this.starts.init({ profile, kind, outcome });
      }
    }
    for (const reason of ["unreachable", "connection_lost", "timeout", "bad_response", "wrong_session"] as const)
      this.shipErrors.init({ reason });
    for (const [, action] of REAPER_ACTIONS) this.reaperActions.init({ action });
    for (const [, action] of RECONCILE_ACTIONS) this.reconcileActions.init({ action });
    for (const beat of ["reaper", "reconcile"]) this.beatErrors.init({ beat });
    this.replays.init();
    this.collectErrors.init({ collector: "sandboxes" });
    this.registry.onCollect(() => this.collect());
  }

  /** The two series of each method, route and status, resolved once (the per-request hot path). */
  private readonly httpSeries = new Map<string, { count: { inc(): void }; seconds: { observe(v: number): void } }>();

  /** A request is being served; the returned function records its answer (`ended`: when it was ready, as performance.now(); default now). */
  requestStarted(): (method: string, route: string, status: number, ended?: number) => void {
    const started = performance.now();
    this.inFlight.add(undefined, 1);
    return (method, route, status, ended = performance.now()) => {
      this.inFlight.add(undefined, -1);
      const m = HTTP_METHODS.has(method) ? method : "OTHER";
      const key = `${m} ${status} ${route}`;
      let series = this.httpSeries.get(key);
      if (!series) {
        const labels = { method: m, route, status: String(status) };
        series = { count: this.requests.child(labels), seconds: this.requestSeconds.child(labels) };
        this.httpSeries.set(key, series);
      }
      series.count.inc();
      series.seconds.observe((ended - started) / SECONDS);
    };
  }

  /** A session start finished (`ms` from claim to ready, or to failure). */
  sessionStarted(profile: string, kind: StartKind, outcome: "ok" | "failed", ms: number): void {
    this.starts.inc({ profile, kind, outcome });
    if (outcome === "ok") this.startSeconds.observe({ profile, kind }, ms / SECONDS);
  }

  shipError(reason: ShipErrorReason): void {
    this.shipErrors.inc({ reason });
  }

  /** One reaper beat's report (its reconcile pass reports on its own). */
  reaperBeat(report: ReapReport): void {
    for (const [field, action] of REAPER_ACTIONS) if (report[field] > 0) this.reaperActions.inc({ action }, report[field]);
    if (report.errors > 0) this.beatErrors.inc({ beat: "reaper" }, report.errors);
  }

  reconciled(report: ReconcileReport): void {
    for (const [field, action] of RECONCILE_ACTIONS) if (report[field] > 0) this.reconcileActions.inc({ action }, report[field]);
    if (report.errors > 0) this.beatErrors.inc({ beat: "reconcile" }, report.errors);
  }

  idempotencyReplayed(): void {
    this.replays.inc();
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.render();
  }

  private async collect(): Promise<void> {
    this.rss.set(undefined, process.memoryUsage.rss());
    this.channels.set(undefined, this.opts.shipChannels?.() ?? 0);
    const pool = this.opts.warmPool ?? NO_WARM_POOL;
    for (const profile of this.opts.profiles) this.poolSize.set({ profile }, pool.size(profile));
    if (!this.opts.sandboxCounts) return;
    this.sandboxes.reset();
    try {
      const counts = await this.opts.sandboxCounts();
      // Every status of every profile, zeros included, so a status that empties reads 0, not absent.
      for (const profile of this.opts.profiles) for (const status of SANDBOX_STATUSES) this.sandboxes.set({ profile, status }, 0);
      for (const c of counts) this.sandboxes.set({ profile: c.profile, status: c.status }, c.count);
    } catch (e) {
      this.collectErrors.inc({ collector: "sandboxes" });
      this.opts.logger?.warn("metrics: sandbox counts unavailable", { error: errorMessage(e) });
    }
  }
}
