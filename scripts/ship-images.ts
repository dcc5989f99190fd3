/**
 * Bay's runtime images (bay-ship, bay-ship-data) for scripts in a checkout:
 * `bun run start` builds missing ones through `ensureImages()`. The building
 * itself is src/bay/images/ (the same code `bay images build` runs from the
 * compiled binary); this module fixes the checkout's Ship sources and the
 * engine from the environment, and keeps the engine's raw output in a log file.
 */
import { appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { shipImages } from "../src/bay/config.ts";
import { connectionOptions } from "../src/bay/drivers/docker/connect-mode.ts";
import { ensureShipImages, type EnsureImagesResult, type ShipImageTarget } from "../src/bay/images/image-builder.ts";
import { repositoryShipSource } from "../src/bay/images/ship-source.ts";

export type { EnsureImagesResult, ShipImageTarget };

/** Image tag per Dockerfile target (`BAY_SHIP_TAG` picks another tag than latest, e.g. one per work tree). */
export const SHIP_IMAGES: Record<ShipImageTarget, string> = shipImages(process.env.BAY_SHIP_TAG || undefined);

/** Options of ensureImages. */
export interface EnsureImagesOptions {
  /** Which images to build (default both; data needs nothing from ship). */
  only?: ShipImageTarget[];
  /** Rebuild even when the label matches. */
  force?: boolean;
  /** Base image; default from $BASE_IMAGE, else debian:bookworm-slim, else bay-base:bookworm. */
  baseImage?: string;
  /** Repository root (default: the parent of this scripts/ folder). */
  repoRoot?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Engine (default: DOCKER_HOST, else /var/run/docker.sock). */
  dockerHost?: string;
}

/** Builds whatever is missing or stale of bay-ship / bay-ship-data from this checkout. */
export async function ensureImages(opts: EnsureImagesOptions = {}): Promise<EnsureImagesResult> {
  const log = opts.log ?? ((line: string) => console.error(`[image:build] ${line}`));
  const logFile = join(tmpdir(), `bay-images-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
  const docker = new Docker(connectionOptions(opts.dockerHost ?? process.env.DOCKER_HOST, undefined));
  log(`raw build output: ${logFile}`);
  const baseImage = opts.baseImage ?? process.env.BASE_IMAGE;
  return ensureShipImages({
    docker,
    source: await repositoryShipSource(opts.repoRoot ?? join(import.meta.dir, "..")),
    tags: SHIP_IMAGES,
    ...(opts.only ? { only: opts.only } : {}),
    ...(opts.force ? { force: true } : {}),
    ...(baseImage ? { baseImage } : {}),
    progress: log,
    raw: (text) => appendFileSync(logFile, text),
  });
}
