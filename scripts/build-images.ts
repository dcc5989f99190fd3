/**
 * `bun run image:build [--only ship|data] [--force] [--base IMAGE]`
 * Builds bay-ship:latest and bay-ship-data:latest, reusing up-to-date images.
 */
import { parseArgs } from "node:util";
import { ensureImages, type ShipImageTarget } from "./ship-images.ts";

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    only: { type: "string" },
    force: { type: "boolean", default: false },
    base: { type: "string" },
  },
});

if (values.only !== undefined && values.only !== "ship" && values.only !== "data") {
  console.error(`--only must be "ship" or "data", got ${JSON.stringify(values.only)}`);
  process.exit(2);
}

try {
  const result = await ensureImages({
    only: values.only ? [values.only as ShipImageTarget] : undefined,
    force: values.force,
    baseImage: values.base,
  });
  for (const image of result.images) {
    console.log(`${image.tag} ${image.built ? "built" : "reused"} (inputs ${image.hash})`);
  }
} catch (err) {
  console.error(`[image:build] ${(err as Error).message}`);
  process.exit(1);
}
