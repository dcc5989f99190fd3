import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { proofFor, type ShipCredentials } from "../protocol/ship/index.ts";
import { sessionAuth } from "./auth.ts";
import { loadShipConfig, type ShipConfig } from "./config.ts";
import { ShipError } from "./errors.ts";
import { ContextRegistry } from "./contexts/context-registry.ts";
import { kernelFor } from "./contexts/kernels.ts";
import { PythonKernel } from "./kernel/python-kernel.ts";
import { channelRoutes } from "./routes/channel.ts";
import { contextRoutes } from "./routes/contexts.ts";
import { filesystemRoutes } from "./routes/filesystem.ts";
import { ipythonRoutes } from "./routes/ipython.ts";
import { portRoutes } from "./routes/ports.ts";
import { processRoutes } from "./routes/processes.ts";
import { shellRoutes } from "./routes/shell.ts";
import { systemRoutes } from "./routes/system.ts";
import { terminalRoutes } from "./routes/terminal.ts";
import { watchRoutes } from "./routes/watch.ts";
import { ProcessRegistry } from "./shell/process-registry.ts";
import { TerminalRegistry } from "./terminal/terminal-registry.ts";
import { WatchHub } from "./watch/watch-hub.ts";
import { websocket } from "./ws.ts";

/** A wired Ship: the Hono app plus the long-lived parts it drives. */
export interface ShipApp {
  app: Hono;
  /** The default Python context's kernel (POST /ipython/exec). */
  kernel: PythonKernel;
  contexts: ContextRegistry;
  processes: ProcessRegistry;
  terminals: TerminalRegistry;
  config: ShipConfig;
  /** Bun.serve's `websocket` option (the terminal's WebSocket). */
  websocket: typeof websocket;
  /** Kills the kernels of every context, the background processes and terminals, and stops file watches. */
  close(): void;
}

function toShipError(err: unknown): ShipError {
  if (err instanceof ShipError) return err;
  if (err instanceof HTTPException) {
    // Hono's validator throws 400 for malformed JSON; bodyLimit would be 413.
    if (err.status === 400) return new ShipError("validation_error", err.message || "malformed request");
    if (err.status === 413) return new ShipError("payload_too_large", "request body too large");
  }
  return new ShipError("internal_error", "internal error", { cause: err });
}

/** Builds Ship's app for one Bay session. `workspace` and `credentials` are required; the rest default like main.ts. */
export function createShipApp(options: Partial<ShipConfig> & { workspace: string; credentials: ShipCredentials }): ShipApp {
  const config: ShipConfig = { ...loadShipConfig({}), ...options };
  const kernel = new PythonKernel({
    python: config.python,
    workspace: config.workspace,
    maxOutputBytes: config.maxOutputBytes,
    maxQueuedExecs: config.maxQueuedExecs,
  });
  const kernels = {
    python: config.python,
    workspace: config.workspace,
    maxOutputBytes: config.maxOutputBytes,
    maxQueuedExecs: config.maxQueuedExecs,
  };
  const contexts = new ContextRegistry({
    workspace: config.workspace,
    maxContexts: config.maxContexts,
    python: kernel,
    kernelFor: (language, cwd) => kernelFor(language, cwd, kernels),
  });
  const processes = new ProcessRegistry({ maxRunning: config.maxBackground, maxOutputBytes: config.maxOutputBytes });
  const terminals = new TerminalRegistry({
    workspace: config.workspace,
    maxTerminals: config.maxTerminals,
    attachMs: config.terminalAttachSeconds * 1000,
  });
  const watchHub = new WatchHub(undefined, config.watchMaxTotalDirs);
  if (config.startKernel) kernel.start();

  const jsonLimit = bodyLimit({
    maxSize: config.maxBodyBytes,
    onError: () => {
      throw new ShipError("payload_too_large", `request body is larger than ${config.maxBodyBytes} bytes`);
    },
  });
  const app = new Hono();
  app.use(sessionAuth(options.credentials.secret));
  app.use("/ipython/*", jsonLimit);
  app.use("/shell/*", jsonLimit);
  app.use("/code/*", jsonLimit);
  app.use("/contexts", jsonLimit);
  app.use("/terminals", jsonLimit);
  app.use("/filesystem/files", jsonLimit);
  app.route("/", systemRoutes({ kernel, workspace: config.workspace, sessionId: options.credentials.session_id }));
  app.route("/", ipythonRoutes({ kernel }));
  app.route("/", contextRoutes({ contexts }));
  app.route("/", shellRoutes({ workspace: config.workspace, processes, maxOutputBytes: config.maxOutputBytes }));
  app.route("/", processRoutes({ processes, maxStdinBytes: config.maxStdinBytes }));
  app.route("/", terminalRoutes({ terminals, workspace: config.workspace, prove: (nonce) => proofFor(options.credentials.secret, nonce) }));
  app.route("/", filesystemRoutes(config));
  // Bay's calls over one WebSocket, each served by this same app.
  app.route("/", channelRoutes({ dispatch: () => app.fetch, prove: (nonce) => proofFor(options.credentials.secret, nonce) }));
  app.route("/", portRoutes({ ownPorts: new Set([config.port]), prove: (nonce) => proofFor(options.credentials.secret, nonce) }));
  app.route(
    "/",
    watchRoutes({
      workspace: config.workspace,
      hub: watchHub,
      maxWatches: config.maxWatches,
      queueMax: config.watchQueue,
      maxDirs: config.watchMaxDirs,
    }),
  );
  app.notFound((c) => {
    const err = new ShipError("not_found", `no route: ${c.req.method} ${c.req.path}`);
    return c.json(err.toBody(), err.status);
  });
  app.onError((err, c) => {
    const shipErr = toShipError(err);
    if (shipErr.code === "internal_error") console.error("[ship] internal error:", err);
    return c.json(shipErr.toBody(), shipErr.status);
  });

  return {
    app,
    kernel,
    contexts,
    processes,
    terminals,
    config,
    websocket,
    close() {
      contexts.closeAll();
      processes.killAll();
      terminals.killAll();
      watchHub.close();
    },
  };
}
