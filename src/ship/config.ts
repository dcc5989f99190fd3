import { DEFAULT_MAX_DIRS } from "./watch/watch-hub.ts";
import { MAX_QUEUED_EXECS } from "./kernel/supervised-kernel.ts";
/** Ship's settings, read once from the environment by main.ts (tests pass their own). */
export interface ShipConfig {
  /** TCP port to listen on. */
  port: number;
  /** Root of every user path. */
  workspace: string;
  /** Python executable that runs the kernel driver. */
  python: string;
  /** Cap per output stream (shell stdout/stderr, kernel output). */
  maxOutputBytes: number;
  /** Cap on running background processes. */
  maxBackground: number;
  /** Execs that may wait behind the running one, per code context. */
  maxQueuedExecs: number;
  /** Code contexts that may be created (the default one per language does not count). */
  maxContexts: number;
  /** Cap on one upload. */
  maxUploadBytes: number;
  /** Cap on a JSON request body and on a text file read. */
  maxBodyBytes: number;
  /** An upload whose body sends nothing for this long is aborted. */
  uploadIdleSeconds: number;
  /** Cap on the decoded bytes of one stdin write to a background process. */
  maxStdinBytes: number;
  /** Terminals running at once. */
  maxTerminals: number;
  /** A terminal nobody attaches to within this many seconds is hung up. */
  terminalAttachSeconds: number;
  /** File watches (SSE streams) at once. */
  maxWatches: number;
  /** Changes one watch queues for a slow reader before it drops (and says so). */
  watchQueue: number;
  /** Directories one recursive watch may cover. */
  watchMaxDirs: number;
  /** Directories watched at once by all of this Ship's watches together. */
  watchMaxTotalDirs: number;
  /** Whether to start the kernel right away (true in production, tests may defer). */
  startKernel: boolean;
  /**
   * A Unix socket to serve on as well (SHIP_SOCKET), in a directory Bay mounted
   * and seals once the socket is bound (see runtime-socket.ts): Bay's transport
   * to this Ship then skips TCP and the engine's port proxy.
   */
  socket?: string;
}

const MiB = 1024 * 1024;

function intFrom(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Builds a full config from environment variables, with defaults. */
export function loadShipConfig(env: Record<string, string | undefined> = process.env): ShipConfig {
  return {
    port: intFrom(env, "SHIP_PORT", 8123),
    workspace: env.SHIP_WORKSPACE || "/workspace",
    python: env.SHIP_PYTHON || "python3",
    maxOutputBytes: intFrom(env, "SHIP_MAX_OUTPUT_BYTES", MiB),
    maxBackground: intFrom(env, "SHIP_MAX_BACKGROUND", 16),
    maxQueuedExecs: intFrom(env, "SHIP_MAX_QUEUED_EXECS", MAX_QUEUED_EXECS),
    maxContexts: intFrom(env, "SHIP_MAX_CONTEXTS", 8),
    maxUploadBytes: intFrom(env, "SHIP_MAX_UPLOAD_BYTES", 1024 * MiB),
    maxBodyBytes: intFrom(env, "SHIP_MAX_BODY_BYTES", 32 * MiB),
    uploadIdleSeconds: intFrom(env, "SHIP_UPLOAD_IDLE_SECONDS", 60),
    maxStdinBytes: intFrom(env, "SHIP_MAX_STDIN_BYTES", MiB),
    maxTerminals: intFrom(env, "SHIP_MAX_TERMINALS", 8),
    terminalAttachSeconds: intFrom(env, "SHIP_TERMINAL_ATTACH_SECONDS", 30),
    maxWatches: intFrom(env, "SHIP_MAX_WATCHES", 16),
    watchQueue: intFrom(env, "SHIP_WATCH_QUEUE", 1024),
    watchMaxDirs: intFrom(env, "SHIP_WATCH_MAX_DIRS", 4096),
    watchMaxTotalDirs: intFrom(env, "SHIP_WATCH_MAX_TOTAL_DIRS", DEFAULT_MAX_DIRS),
    startKernel: true,
    ...(env.SHIP_SOCKET ? { socket: env.SHIP_SOCKET } : {}),
  };
}
