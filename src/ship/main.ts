/**
 * Ship's entry point, compiled into a single executable for the runtime image.
 * `ship` reads its session credentials from stdin, starts the kernel and serves
 * the API; `ship js-kernel [--language javascript|typescript]` is one
 * JavaScript/TypeScript kernel process (kernel/js/kernel.ts), which Ship starts
 * per code context. Each branch imports only what it needs, so a kernel process
 * never loads the server (nor ever holds the secret).
 */
if (process.argv[2] === "js-kernel") {
  const { runJsKernel } = await import("./kernel/js/kernel.ts");
  runJsKernel(process.argv.slice(3));
} else {
  await serve();
}

async function serve(): Promise<void> {
  const { CREDENTIALS_ENV, TRANSPORT_MAX_HEADER_BYTES } = await import("../protocol/ship/index.ts");
  const { loadShipConfig } = await import("./config.ts");
  const { createShipApp } = await import("./app.ts");
  const { readCredentialsFromStdin } = await import("./credentials.ts");
  const { UPLOAD_OVERHEAD_BYTES } = await import("./filesystem/transfer.ts");
  const { makeNonDumpable } = await import("./harden.ts");

  const config = loadShipConfig();
  if (process.env[CREDENTIALS_ENV] !== "stdin") {
    console.error(`[ship] refusing to start: no session credentials (Bay sets ${CREDENTIALS_ENV}=stdin and writes them on stdin)`);
    process.exit(2);
  }
  // Before the secret is in memory: from here on /proc/<pid>/mem and environ belong to root.
  // Fail closed: a dumpable Ship would hand its secret to any user process.
  if (!makeNonDumpable()) {
    console.error("[ship] refusing to start: could not mark the process non-dumpable (user code could read the session secret)");
    process.exit(2);
  }
  let credentials: ReturnType<typeof readCredentialsFromStdin>;
  try {
    credentials = readCredentialsFromStdin();
  } catch (err) {
    console.error(`[ship] refusing to start: ${(err as Error).message}`);
    process.exit(2);
  }
  // The kernel (the first thing that may run code from the workspace) starts only
  // once every listener is up and, with a socket, its directory is sealed.
  const ship = createShipApp({ ...config, credentials, startKernel: false });
  const serveOptions = {
    fetch: ship.app.fetch,
    websocket: ship.websocket,
    // Uploads and long execs (up to 300 s) must not hit the idle timeout.
    idleTimeout: 0,
    maxRequestBodySize: config.maxUploadBytes + UPLOAD_OVERHEAD_BYTES,
  };
  // Bun's parser refuses a head past its limit (16 KiB by default) with a bare 431 of its own.
  // Bay passes on heads up to its server.max_header_bytes (at most 1 MiB, plus its own few
  // headers): a request for a server in the sandbox must reach Ship's code, never that.
  const { default: http } = await import("node:http");
  (http as { maxHeaderSize: number }).maxHeaderSize = TRANSPORT_MAX_HEADER_BYTES;
  const server = Bun.serve({ ...serveOptions, port: config.port, hostname: "0.0.0.0" });
  let socketServer: ReturnType<typeof Bun.serve> | null = null;
  if (config.socket) {
    const { listenOnSocket } = await import("./socket-listener.ts");
    try {
      socketServer = await listenOnSocket(config.socket, serveOptions);
    } catch (err) {
      console.error(`[ship] refusing to start: ${(err as Error).message}`);
      process.exit(2);
    }
  }
  // From here on, an error nobody owns is said and Ship keeps serving; before, a failed start must end it (not exit 0).
  installProcessPolicy();
  if (config.startKernel) ship.kernel.start();
  // Upload temporaries an earlier Ship on this workspace left when it died mid-upload.
  const { sweepUploadTempsPeriodically } = await import("./filesystem/upload-sweep.ts");
  const stopSweep = sweepUploadTempsPeriodically(config.workspace, config.uploadIdleSeconds * 1000);
  console.error(`[ship] session ${credentials.session_id}`);
  console.error(`[ship] listening on :${server.port}${config.socket ? ` and ${config.socket}` : ""}, workspace ${config.workspace}`);

  function shutdown(): void {
    stopSweep();
    ship.close();
    void server.stop(true);
    void socketServer?.stop(true);
    process.exit(0);
  }
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

/**
 * Last line of defence, as in Bay: an error that escapes every owner (a promise
 * nobody awaits) is said on stderr and Ship keeps serving. Ending the process
 * for it would end the sandbox's runtime, and every context's state with it.
 * Each such line is a bug to fix where it started.
 */
function installProcessPolicy(): void {
  const say = (what: string, err: unknown) =>
    console.error(`[ship] ${what}; Ship keeps serving: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.on("uncaughtException", (err) => say("uncaught exception", err));
  process.on("unhandledRejection", (reason) => say("unhandled rejection", reason));
}

// A module (top-level await above).
export {};
