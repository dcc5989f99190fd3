/**
 * `bun run start`: checks the Docker engine and the profiles' images, builds
 * Bay's own images (bay-ship, bay-ship-data) when they are missing, then runs
 * Bay in this process (src/bay/main.ts `main()`).
 *
 * Configuration is Bay's own, loadConfig(process.env): BAY_CONFIG, BAY_PORT
 * (default 8000), BAY_DB_URL (default file:./data/bay.db) and every other
 * documented override apply to the checks and to Bay alike.
 *
 * Bay starts even when an image is missing or Docker is unreachable; GET
 * /health then reports it (status "degraded", each missing image with its
 * build command). BAY_SKIP_IMAGE_BUILD=1 reports missing images without
 * building them.
 */
import { loadConfigOrExit, main } from "../src/bay/main.ts";
import { checkImages } from "./lib/start-checks.ts";

const log = (line: string) => process.stderr.write(`[start] ${line}\n`);

const config = loadConfigOrExit();

const skipBuild = ["1", "true", "yes"].includes((process.env.BAY_SKIP_IMAGE_BUILD ?? "").toLowerCase());
await checkImages(config, { skipBuild, log });
await main(config);
