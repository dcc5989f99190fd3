/**
 * Ship's entry point, compiled into a single executable for the runtime image.
 * `ship` reads the environment, starts the kernel and serves the API;
 * `ship js-kernel [--language javascript|typescript]` is one JavaScript/TypeScript kernel
 * process (kernel/js/kernel.ts), which Ship starts per code context. Each branch imports
 * only what it needs, so a kernel process never loads the server.
 */
if (process.argv[2] === "js-kernel") {
  const { runJsKernel } = await import("./kernel/js/kernel.ts");
  runJsKernel(process.argv.slice(3));
} else {
  await serve();
}

async function serve(): Promise<void> {
  const { loadShipConfig } = await import("./config.ts");
  const { createShipApp } = await import("./app.ts");
  const { UPLOAD_OVERHEAD_BYTES } = await import("./filesystem/transfer.ts");

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
}

// A module (top-level await above).
export {};
