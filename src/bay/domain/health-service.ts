/**
 * What GET /health reports: the database, the driver, and the profiles' images
 * and runtimes.
 *
 * The engine probe (a ping and one image inspect per profile: several round
 * trips to Docker) is reused for `engineCacheMs` (a failed one for at most a
 * second, so a recovery shows soon), and concurrent checks share one probe, so
 * /health can be scraped every second, or by many scrapers, at the cost of a
 * database ping. The database is asked on every check: it is local and cheap,
 * and its answer is the one a load balancer most needs fresh.
 */
import type { Driver } from "../drivers/driver.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { Database } from "../store/database.ts";
import { pingDatabase } from "../store/database.ts";
import { RuntimeAvailability, type ProfileRegistry } from "./profiles.ts";

export interface HealthReport {
  status: "healthy" | "degraded";
  version: string;
  database: { ok: boolean; error?: string };
  driver: { name: string; ok: boolean; error?: string };
  images: Array<{ profile: string; image: string; present: boolean; build_command?: string }>;
  /** Whether the engine has each profile's OCI runtime (names stay in the authenticated /v1/profiles). */
  runtimes: Array<{ profile: string; available: boolean }>;
}

export const IMAGE_BUILD_COMMAND = "bun run image:build";

type EngineReport = Pick<HealthReport, "driver" | "images" | "runtimes">;

export interface HealthServiceDeps {
  db: Database;
  driver: Driver;
  profiles: ProfileRegistry;
  version: string;
  logger?: Logger;
  /** How long an engine probe is reused (default 5 s). */
  engineCacheMs?: number;
  now?: () => number;
}

const FAILED_PROBE_CACHE_MS = 1000;

export class HealthService {
  private readonly runtimeAvailability: RuntimeAvailability;
  /** The check in flight: /health is unauthenticated and not rate limited, so requests arriving together share one. */
  private inflight: Promise<HealthReport> | null = null;
  private engine: { at: number; ttl: number; report: EngineReport } | null = null;
  private probing: Promise<EngineReport> | null = null;
  private readonly now: () => number;

  constructor(private readonly deps: HealthServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.runtimeAvailability = new RuntimeAvailability(deps.driver);
  }

  /** Per profile id: whether the engine has its runtime (null: cannot tell); the engine probe is cached. */
  profileRuntimes(): Promise<Map<string, boolean | null>> {
    return this.runtimeAvailability.of(this.deps.profiles.list());
  }

  /** The current report; concurrent callers share one check (it is not cached past its end; the engine probe is). */
  check(): Promise<HealthReport> {
    this.inflight ??= this.run().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async run(): Promise<HealthReport> {
    const { db, version } = this.deps;
    // /health needs no credentials: the reasons go to the log, the answer only says what is down.
    const [database, engine] = await Promise.all([
      pingDatabase(db).then(
        () => ({ ok: true }),
        (e: unknown) => {
          this.deps.logger?.warn("health: database unreachable", { error: errorMessage(e) });
          return { ok: false, error: "unreachable" };
        },
      ),
      this.engineReport(),
    ]);
    const ok = database.ok && engineOk(engine);
    return { status: ok ? "healthy" : "degraded", version, database, ...engine };
  }

  /** The last engine probe while it is fresh; otherwise one new probe, shared by concurrent callers. */
  private engineReport(): Promise<EngineReport> {
    const cached = this.engine;
    if (cached && this.now() - cached.at < cached.ttl) return Promise.resolve(cached.report);
    this.probing ??= this.probeEngine()
      .then((report) => {
        const fresh = this.deps.engineCacheMs ?? 5000;
        this.engine = { at: this.now(), ttl: engineOk(report) ? fresh : Math.min(FAILED_PROBE_CACHE_MS, fresh), report };
        return report;
      })
      .finally(() => {
        this.probing = null;
      });
    return this.probing;
  }

  private async probeEngine(): Promise<EngineReport> {
    const { driver, profiles } = this.deps;
    const drv = await driver.ping().then(
      () => ({ name: driver.name, ok: true }),
      (e: unknown) => {
        this.deps.logger?.warn("health: container engine unreachable", { error: errorMessage(e) });
        return { name: driver.name, ok: false, error: "unreachable" };
      },
    );
    const images: HealthReport["images"] = [];
    const runtimes: HealthReport["runtimes"] = [];
    if (drv.ok) {
      const checked = await Promise.all(
        profiles.list().map(async (p) => ({ p, present: await driver.imageExists(p.image).catch(() => false) })),
      );
      for (const { p, present } of checked) {
        images.push({ profile: p.id, image: p.image, present, ...(present ? {} : { build_command: IMAGE_BUILD_COMMAND }) });
      }
      // Unknown (null) is not reported as missing: the engine answered the ping, so only the probe failed.
      for (const [profile, available] of await this.profileRuntimes()) if (available !== null) runtimes.push({ profile, available });
    }
    return { driver: drv, images, runtimes };
  }
}

function engineOk(e: EngineReport): boolean {
  return e.driver.ok && e.images.every((i) => i.present) && e.runtimes.every((r) => r.available);
}
