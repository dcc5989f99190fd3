/** Running `bay` (src/bay/cli.ts) as a user runs it, against a served Bay. */
import { join } from "node:path";
import type { ServedBay } from "./serve.ts";

/** The CLI's entry point, run with `bun`. */
export const CLI = join(import.meta.dir, "../../../src/bay/cli.ts");

/** The environment a user's `bay` has: no more than PATH and HOME, and the served Bay as BAY_URL with `owner` as BAY_OWNER. */
export const cliEnv = (served: ServedBay, owner = "alice") => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: process.env.HOME ?? "/root",
  BAY_URL: served.http,
  BAY_OWNER: owner,
});
