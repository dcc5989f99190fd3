/** What GET /health reports: the database, the driver, and the profiles' images and runtimes. */
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

export class HealthService {
  private readonly runtimeAvailability: RuntimeAvailability;
  /** The check in flight: /health is unauthenticated and not rate limited, so requests arriving together share one. */
  private inflight: Promise<HealthReport> | null = null;

  constructor(private readonly deps: { db: Database; driver: Driver; profiles: ProfileRegistry; version: string; logger?: Logger }) {
    this.runtimeAvailability = new RuntimeAvailability(deps.driver);
  }

  /** Per profile id: whether the engine has its runtime (null: cannot tell); the engine probe is cached. */
  profileRuntimes(): Promise<Map<string, boolean | null>> {
    return this.runtimeAvailability.of(this.deps.profiles.list());
  }

  /** The current report; concurrent callers share one check (it is not cached past its end). */
  check(): Promise<HealthReport> {
    this.inflight ??= this.run().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async run(): Promise<HealthReport> {
    const { db, driver, profiles, version } = this.deps;
    // /health needs no credentials: the reasons go to the log, the answer only says what is down.
    const database = await pingDatabase(db).then(
      () => ({ ok: true }),
      (e: unknown) => {
        this.deps.logger?.warn("health: database unreachable", { error: errorMessage(e) });
        return { ok: false, error: "unreachable" };
      },
    );
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
      for (const p of profiles.list()) {
        const present = await driver.imageExists(p.image).catch(() => false);
        images.push({ profile: p.id, image: p.image, present, ...(present ? {} : { build_command: IMAGE_BUILD_COMMAND }) });
      }
      // Unknown (null) is not reported as missing: the engine answered the ping, so only the probe failed.
      for (const [profile, available] of await this.profileRuntimes()) if (available !== null) runtimes.push({ profile, available });
    }
    const ok = database.ok && drv.ok && images.every((i) => i.present) && runtimes.every((r) => r.available);
    return { status: ok ? "healthy" : "degraded", version, database, driver: drv, images, runtimes };
  }
}
