/** What GET /health reports: the database, the driver, and the profiles' images. */
import type { Driver } from "../drivers/driver.ts";
import { errorMessage } from "../logger.ts";
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
  constructor(private readonly deps: { db: Database; driver: Driver; profiles: ProfileRegistry; version: string }) {}

  async check(): Promise<HealthReport> {
    const { db, driver, profiles, version } = this.deps;
    const database = await pingDatabase(db).then(
      () => ({ ok: true }),
      (e: unknown) => ({ ok: false, error: errorMessage(e) }),
    );
    const drv = await driver.ping().then(
      () => ({ name: driver.name, ok: true }),
      (e: unknown) => ({ name: driver.name, ok: false, error: errorMessage(e) }),
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
