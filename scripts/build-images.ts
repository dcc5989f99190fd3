/**
 * `bun run image:build [--only ship|data] [--force] [--base IMAGE] [--log FILE]`
 * Builds bay-ship and bay-ship-data from this checkout, reusing up-to-date
 * images: the same command as `bay images build` (src/bay/cli/images.ts).
 */
import { runCli } from "../src/bay/cli.ts";

const env = { ...process.env };
// The documented BASE_IMAGE override becomes --base unless one is given.
const argv = ["images", "build", ...Bun.argv.slice(2)];
if (env.BASE_IMAGE && !argv.some((a) => a === "--base" || a.startsWith("--base="))) argv.push("--base", env.BASE_IMAGE);
const code = await runCli(argv, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env,
});
process.exit(code === "serving" ? 0 : code);
