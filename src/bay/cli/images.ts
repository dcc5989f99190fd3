/**
 * `bay images build`: builds Bay's runtime images on the configured engine,
 * from the Ship embedded in a compiled `dist/bay` or, in a checkout, from
 * src/ship. Prints one line per step with the time since the start; the
 * engine's raw output goes to a log file named on the first line.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Docker } from "../drivers/docker/dockerode.ts";
import { shipImages } from "../config.ts";
import { connectionOptions } from "../drivers/docker/connect-mode.ts";
import { ensureShipImages, type ShipImageTarget } from "../images/image-builder.ts";
import { defaultShipSource } from "../images/ship-source.ts";
import { errorMessage } from "../logger.ts";
import { loadCliConfig } from "./config.ts";
import { allowOnly, type CliIo, elapsed, flag, type Parsed, parseArgs, UsageError } from "./args.ts";

export const IMAGES_USAGE = `usage: bay images build [--only ship|data] [--force] [--base IMAGE] [--log FILE]

Builds bay-ship and bay-ship-data (tag: BAY_SHIP_TAG, default latest) on the Docker
engine of the configuration (DOCKER_HOST / BAY_DOCKER_SOCKET), reusing images and
layers that are up to date. A compiled dist/bay carries everything it needs.
--log names the file for the engine's raw output (default: a new file in $TMPDIR).`;

/** Lines of raw output shown when a build fails. */
const TAIL_LINES = 15;

export async function runImages(argv: string[], io: CliIo): Promise<number> {
  let args: Parsed;
  let only: ShipImageTarget[] | undefined;
  try {
    args = parseArgs(argv, { values: ["only", "base", "log"], bools: ["force"] });
    if (args.flags.has("help")) {
      io.out(IMAGES_USAGE);
      return 0;
    }
    const command = args.positionals.shift();
    if (command !== "build") throw new UsageError(command === undefined ? "missing command" : `unknown command: images ${command}`);
    allowOnly(args, ["only", "base", "log", "force"], 0);
    const o = flag(args, "only");
    if (o !== undefined && o !== "ship" && o !== "data") throw new UsageError(`--only must be ship or data, got ${o}`);
    only = o ? [o] : undefined;
  } catch (e) {
    io.err(`bay: ${errorMessage(e)}\n\n${IMAGES_USAGE}`);
    return 2;
  }
  const config = loadCliConfig(io);
  if (!config) return 2;
  const logFile = flag(args, "log") ?? join(tmpdir(), `bay-images-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
  const tags = shipImages(io.env.BAY_SHIP_TAG || undefined);
  const started = performance.now();
  const say = (line: string) => io.out(`[${elapsed(performance.now() - started).padStart(6)}] ${line}`);
  try {
    writeFileSync(logFile, "");
  } catch (e) {
    io.err(`bay: cannot write the build log ${logFile}: ${errorMessage(e)}`);
    return 1;
  }
  const docker = new Docker(connectionOptions(config.driver.host, config.driver.socket_path));
  const tail: string[] = [];
  try {
    await docker.ping().catch((e: unknown) => {
      throw new Error(`the Docker engine does not answer (${errorMessage(e)}); run \`bay doctor\` for the fix`);
    });
    const source = await defaultShipSource();
    say(
      `images ${(only ?? ["ship", "data"]).map((t) => tags[t as ShipImageTarget]).join(", ")} from ${source.origin === "embedded" ? "the Ship embedded in this binary" : "src/ship"}; raw output: ${logFile}`,
    );
    const result = await ensureShipImages({
      docker,
      source,
      tags,
      ...(only ? { only } : {}),
      force: args.flags.has("force"),
      ...(flag(args, "base") ? { baseImage: flag(args, "base")! } : {}),
      progress: say,
      raw: (text) => {
        appendFileSync(logFile, text);
        tail.push(...text.split("\n").filter((l) => l.trim() !== ""));
        tail.splice(0, Math.max(0, tail.length - TAIL_LINES));
      },
    });
    say(`done: ${result.images.map((i) => `${i.tag} ${i.built ? "built" : "up to date"}`).join(", ")}`);
    return 0;
  } catch (e) {
    io.err(`bay: image build failed: ${errorMessage(e)}`);
    if (tail.length) io.err(`last lines of the engine's output:\n${tail.map((l) => `  ${l}`).join("\n")}`);
    io.err(`bay: the engine's whole output is in ${logFile}`);
    return 1;
  }
}
