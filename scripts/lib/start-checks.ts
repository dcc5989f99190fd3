/**
 * The pre-flight of `bun run start`: is the Docker engine there, are the
 * profiles' images present, and if Bay's own are missing, build them.
 * Never throws for engine or build trouble: it reports and lets Bay start,
 * whose /health then shows the same state.
 */
import { createDriver } from "../../src/bay/bootstrap.ts";
import type { BayConfig } from "../../src/bay/config.ts";
import { IMAGE_BUILD_COMMAND } from "../../src/bay/domain/health-service.ts";
import type { Driver } from "../../src/bay/drivers/driver.ts";
import { ensureImages, type EnsureImagesOptions, type EnsureImagesResult } from "../ship-images.ts";
import { planImages, profileImages, type ImagePlan, type ProfileImage } from "./profile-images.ts";

export interface CheckOptions {
  log: (line: string) => void;
  /** Report missing images without building them (BAY_SKIP_IMAGE_BUILD=1). */
  skipBuild?: boolean;
  /** Defaults to the driver Bay itself would use. */
  driver?: Pick<Driver, "ping" | "imageExists" | "close">;
  /** Defaults to scripts/ship-images.ts ensureImages. */
  ensure?: (opts: EnsureImagesOptions) => Promise<EnsureImagesResult>;
  /** How long the engine may take to answer a ping. */
  pingTimeoutMs?: number;
}

export type CheckOutcome =
  | { engine: "unreachable"; error: string; images: ProfileImage[] }
  | { engine: "ok"; plan: ImagePlan; built: ProfileImage[]; buildError?: string };

const describe = (img: ProfileImage) => `${img.image} (profile ${img.profiles.join(", ")})`;

export async function checkImages(config: BayConfig, opts: CheckOptions): Promise<CheckOutcome> {
  const { log } = opts;
  const driver = opts.driver ?? createDriver(config);
  const images = profileImages(config);
  try {
    const pinged = await withTimeout(driver.ping(), opts.pingTimeoutMs ?? 5000).then(
      () => null,
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    if (pinged !== null) {
      log(`Docker engine unreachable (${pinged}); cannot check or build images.`);
      log("Bay starts anyway; GET /health reports the driver as down. Once Docker runs, make sure these images exist:");
      for (const img of images) log(`  ${describe(img)}: ${img.buildCommand ?? "not built by Bay; pull or build it yourself"}`);
      return { engine: "unreachable", error: pinged, images };
    }

    const present = new Set<string>();
    for (const img of images) if (await driver.imageExists(img.image).catch(() => false)) present.add(img.image);
    const plan = planImages(images, (i) => present.has(i));
    for (const img of plan.present) log(`image ${describe(img)}: present`);
    for (const img of plan.foreign) log(`image ${describe(img)}: MISSING; Bay does not build it, pull or build it yourself`);

    let built: ProfileImage[] = [];
    let buildError: string | undefined;
    if (plan.toBuild.length > 0 && opts.skipBuild) {
      for (const img of plan.toBuild) log(`image ${describe(img)}: MISSING; build it with \`${img.buildCommand}\``);
      log(`BAY_SKIP_IMAGE_BUILD is set: not building. \`${IMAGE_BUILD_COMMAND}\` builds all of Bay's images.`);
    } else if (plan.toBuild.length > 0) {
      log(
        `building missing image(s) ${plan.toBuild.map((i) => i.image).join(", ")} (several minutes the first time; BAY_SKIP_IMAGE_BUILD=1 skips this)`,
      );
      const started = performance.now();
      try {
        await withDockerHost(config, () =>
          (opts.ensure ?? ensureImages)({
            only: [...new Set(plan.toBuild.map((i) => i.target!))],
            log: (line) => log(`image:build: ${line}`),
          }),
        );
        built = plan.toBuild;
        log(`built ${built.map((i) => i.image).join(", ")} in ${((performance.now() - started) / 1000).toFixed(0)}s`);
      } catch (e) {
        buildError = e instanceof Error ? e.message : String(e);
        log(`image build failed: ${buildError}`);
        log(`Bay starts anyway; fix the cause and run \`${IMAGE_BUILD_COMMAND}\`.`);
      }
    }
    return { engine: "ok", plan, built, ...(buildError ? { buildError } : {}) };
  } finally {
    await driver.close().catch(() => {});
  }
}

/** The image build uses the docker CLI; point it at the engine Bay is configured for. */
async function withDockerHost<T>(config: BayConfig, fn: () => Promise<T>): Promise<T> {
  const wanted = config.driver.host ?? `unix://${config.driver.socket_path}`;
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = wanted;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
