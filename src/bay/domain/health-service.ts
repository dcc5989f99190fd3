/** What GET /health reports: the database, the driver, and the profiles' images. */
import type { Driver } from "../drivers/driver.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { Database } from "../store/database.ts";
import { pingDatabase } from "../store/database.ts";
import type { ProfileRegistry } from "./profiles.ts";

export interface HealthReport {
  status: "healthy" | "degraded";
  version: string;
  database: { ok: boolean; error?: string };
  driver: { name: string; ok: boolean; error?: string };
  images: Array<{ profile: string; image: string; present: boolean; build_command?: string }>;
}

export const IMAGE_BUILD_COMMAND = "bun run image:build";

export class HealthService {
  constructor(private readonly deps: { db: Database; driver: Driver; profiles: ProfileRegistry; version: string; logger?: Logger }) {}

  async check(): Promise<HealthReport> {
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
    if (drv.ok) {
      for (const p of profiles.list()) {
        const present = await driver.imageExists(p.image).catch(() => false);
        images.push({ profile: p.id, image: p.image, present, ...(present ? {} : { build_command: IMAGE_BUILD_COMMAND }) });
      }
    }
    const ok = database.ok && drv.ok && images.every((i) => i.present);
    return { status: ok ? "healthy" : "degraded", version, database, driver: drv, images };
  }
}
