/**
 * Ship's entry point: reads the environment, starts the kernel and serves the API.
 * Compiled into a single executable for the runtime image.
 */
import { CREDENTIALS_ENV } from "../protocol/ship/index.ts";
import { createShipApp } from "./app.ts";
import { loadShipConfig } from "./config.ts";
import { readCredentialsFromStdin } from "./credentials.ts";
import { UPLOAD_OVERHEAD_BYTES } from "./filesystem/transfer.ts";
import { makeNonDumpable } from "./harden.ts";

const config = loadShipConfig();
if (process.env[CREDENTIALS_ENV] !== "stdin") {
  console.error(`[ship] refusing to start: no session credentials (Bay sets ${CREDENTIALS_ENV}=stdin and writes them on stdin)`);
  process.exit(2);
}
// Before the secret is in memory: from here on /proc/<pid>/mem and environ belong to root.
if (!makeNonDumpable()) console.error("[ship] warning: could not mark the process non-dumpable");
let credentials: ReturnType<typeof readCredentialsFromStdin>;
try {
  credentials = readCredentialsFromStdin();
} catch (err) {
  console.error(`[ship] refusing to start: ${(err as Error).message}`);
  process.exit(2);
}
const ship = createShipApp({ ...config, credentials });
const server = Bun.serve({
  port: config.port,
  hostname: "0.0.0.0",
  fetch: ship.app.fetch,
  // Uploads and long execs (up to 300 s) must not hit the idle timeout.
  idleTimeout: 0,
  maxRequestBodySize: config.maxUploadBytes + UPLOAD_OVERHEAD_BYTES,
});
console.error(`[ship] session ${credentials.session_id}`);
console.error(`[ship] listening on :${server.port}, workspace ${config.workspace}`);

function shutdown(): void {
  ship.close();
  void server.stop(true);
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
