/**
 * Ship's entry point: reads the environment, starts the kernel and serves the API.
 * Compiled into a single executable for the runtime image.
 */
import { loadShipConfig } from "./config.ts";
import { createShipApp } from "./app.ts";
import { UPLOAD_OVERHEAD_BYTES } from "./filesystem/transfer.ts";

const config = loadShipConfig();
const ship = createShipApp(config);
const server = Bun.serve({
  port: config.port,
  hostname: "0.0.0.0",
  fetch: ship.app.fetch,
  // Uploads and long execs (up to 300 s) must not hit the idle timeout.
  idleTimeout: 0,
  maxRequestBodySize: config.maxUploadBytes + UPLOAD_OVERHEAD_BYTES,
});
console.error(`[ship] listening on :${server.port}, workspace ${config.workspace}`);

function shutdown(): void {
  ship.close();
  void server.stop(true);
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
