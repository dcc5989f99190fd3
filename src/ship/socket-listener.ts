/**
 * Ship's Unix-socket listener (SHIP_SOCKET), Bay's faster transport to it. The
 * socket's directory is a bind mount from the host that Bay seals (makes
 * unwritable for this container's user) as soon as the socket exists, so code
 * running in the sandbox later can neither remove the socket nor put a symlink
 * in its place that would send Bay's calls elsewhere on the host. Ship starts
 * no kernel, hence runs no code from the workspace, until it sees the seal;
 * a directory that is never sealed (Bay gone, or running as this very user)
 * stops Ship: it fails closed.
 */
import { accessSync, chmodSync, constants, statSync } from "node:fs";
import { dirname } from "node:path";

/** How long Ship waits for Bay's seal before it gives up. */
export const SEAL_WAIT_MS = 30_000;
const POLL_MS = 2;

/**
 * Whether Bay sealed `dir`: no longer writable by this process, and not this
 * process's user's own (its owner could make it writable again).
 */
export function isSealed(dir: string): boolean {
  if (statSync(dir).uid === process.getuid?.()) return false;
  try {
    accessSync(dir, constants.W_OK);
    return false;
  } catch {
    return true;
  }
}

/**
 * Serves `options` on the Unix socket `path` (any stale file there is replaced),
 * reachable by Bay whatever user it runs as (the sealed, Bay-only parent
 * directory is what guards it), then waits until the directory is sealed.
 */
export async function listenOnSocket(
  path: string,
  options: Omit<Parameters<typeof Bun.serve>[0], "port" | "hostname" | "unix">,
  waitMs = SEAL_WAIT_MS,
): Promise<ReturnType<typeof Bun.serve>> {
  const server = Bun.serve({ ...(options as object), unix: path } as Parameters<typeof Bun.serve>[0]);
  chmodSync(path, 0o666);
  const dir = dirname(path);
  const until = Date.now() + waitMs;
  while (!isSealed(dir)) {
    if (Date.now() > until) {
      void server.stop(true);
      throw new Error(`the socket directory ${dir} was not sealed within ${waitMs} ms`);
    }
    await Bun.sleep(POLL_MS);
  }
  return server;
}
