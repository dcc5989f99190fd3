/**
 * Composition root: loadConfig → buildBay → Bun.serve. The only place that
 * reads the process environment and wires things together. Runs when executed
 * directly (`bun run src/bay/main.ts`, the compiled `dist/bay`); scripts/start.ts
 * imports `main` and calls it after its image checks.
 */
import http from "node:http";
import { TRANSPORT_MAX_HEADER_BYTES } from "../protocol/ship/constants.ts";
import { UploadSpool } from "./api/upload-spool.ts";
import { buildBay } from "./bootstrap.ts";
import { ConfigError, loadConfig, type BayConfig } from "./config.ts";
import { createLogger, errorMessage, type Logger } from "./logger.ts";

/** Exit status when the configured address cannot be listened on (2 is an invalid configuration). */
export const EXIT_CANNOT_LISTEN = 3;

/** The configuration from the process environment; an invalid one is printed whole and exits 2. */
export function loadConfigOrExit(): BayConfig {
  try {
    return loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

/** Builds Bay from `config` (default: the environment's) and serves it until SIGINT/SIGTERM. */
export async function main(config: BayConfig = loadConfigOrExit()): Promise<void> {
  const logger = createLogger(config.log.level, undefined, config.log.format);
  installProcessPolicy(logger);
  // Spooled uploads of processes that died (crash, kill -9) are never read again.
  const stale = UploadSpool.cleanStale(config.limits.spool_dir);
  if (stale > 0) logger.info("removed upload spools left by stopped processes", { count: stale });
  // Profile env may reference Bay's own environment (`${NAME}`).
  const bay = await buildBay(config, { logger, hostEnv: process.env });
  // Bun's parser answers oversized headers itself, with a bare 431 and no request id.
  // Its limit goes far above Bay's own (server.max_header_bytes), so the app answers
  // in the error model; the same for bodies (each route has its own limit).
  (http as { maxHeaderSize: number }).maxHeaderSize = TRANSPORT_MAX_HEADER_BYTES;
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: config.server.host,
      port: config.server.port,
      fetch: bay.app.fetch,
      websocket: bay.websocket,
      // Idle connections close; calls to a sandbox lift it for their own request (see api/middleware/connection.ts).
      idleTimeout: config.server.idle_timeout,
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    });
  } catch (e) {
    // Nothing was served: a supervisor must see a failed start, not a clean exit.
    logger.error("cannot listen; Bay is not running", {
      address: `${config.server.host}:${config.server.port}`,
      error: errorMessage(e),
      hint: "the port may be taken by another process, or the host not an address of this machine: set BAY_PORT / BAY_HOST (server.port / server.host)",
    });
    await bay.close();
    process.exit(EXIT_CANNOT_LISTEN);
  }
  logger.info("bay listening", {
    url: `http://${server.hostname}:${server.port}`,
    database: redactUrl(config.database.url),
    auth: config.auth.mode,
    instance_id: bay.instanceId,
  });
  // Signals are handled from the moment the server answers, so a stop that
  // arrives during the start-up checks below still shuts down cleanly.
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    await server.stop();
    await bay.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  const health = await bay.deps.health.check();
  for (const img of health.images.filter((i) => !i.present)) {
    logger.warn("profile image missing; build it with `bun run image:build`", { profile: img.profile, image: img.image });
  }
  if (!health.driver.ok) logger.warn("container driver unreachable", { error: health.driver.error });
  // Reconcile what a previous run (or a crashed replica) left behind, then keep the lifecycle beat going.
  await bay.reconciler.runOnce();
  if (!stopping) {
    bay.reaper.start();
    bay.pool.start();
    bay.metricsSampler.start();
  }
}

/**
 * Last line of defence: an error that escapes every owner (a stream 'error'
 * nobody listens to, a promise nobody awaits) is logged and the process keeps
 * serving. Each such log line is a bug to fix where it started; stopping Bay
 * for every tenant because one request went wrong is never the better outcome.
 */
export function installProcessPolicy(logger: Logger): void {
  process.on("uncaughtException", (err) => {
    logger.error("uncaught exception; Bay keeps serving", { error: errorMessage(err), stack: (err as Error)?.stack });
  });
  process.on("unhandledRejection", (reason) => {
    logger.error("unhandled rejection; Bay keeps serving", { error: errorMessage(reason), stack: (reason as Error)?.stack });
  });
}

/** Database URLs may carry credentials; log only scheme and host/path. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@").replace(/([?&](authToken|token)=)[^&]*/gi, "$1***");
}

if (import.meta.main) await main();
