/**
 * Ship's Unix socket (connect_mode unix_socket): where each container's Ship
 * listens on the host, and the one rule that makes it safe to connect to.
 *
 * Every container gets its own directory `<root>/<container name>` (root:
 * `<socket_dir>/bay-<instance id>`), bind-mounted at SOCKET_MOUNT, writable only
 * until Ship has bound `ship.sock` in it. Bay then seals it (mode 0711, owned by
 * Bay's user: the container's user, which must be another, can no longer create,
 * remove or rename anything there), checks that it holds a socket and nothing
 * else, and only then hands out the endpoint. Ship starts no kernel, so runs no
 * code from the workspace, before it sees the seal (src/ship/socket-listener.ts):
 * nothing in the sandbox can ever swap the socket for a link to another socket
 * on the host. The root is 0700, Bay's own: no other host user reaches a
 * directory while it is still open. A directory outlives its container only
 * until `sweep` (reconcile) or `remove` (the container's removal).
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { BayError } from "../../errors.ts";

/** Where the directory is mounted in the container, and the socket's name in it. */
export const SOCKET_MOUNT = "/run/bay-ship";
export const SOCKET_NAME = "ship.sock";
/** The endpoint scheme: `unix:<absolute path of the socket on the host>`. */
export const UNIX_ENDPOINT_PREFIX = "unix:";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const POLL_MS = 2;
/**
 * A directory without a container is swept only once older than this: it is made
 * just before its container is created, so a younger one may belong to a create
 * still in flight (the driver passes twice its engine call deadline when longer).
 */
export const SWEEP_GRACE_MS = 60_000;

/** Whether an OCI runtime serves Ship's socket to the host: runc does; gVisor's sandbox keeps its sockets to itself. */
export const runtimeServesSocket = (runtime: string | undefined): boolean =>
  runtime === undefined || runtime === "" || runtime === "runc" || runtime === "io.containerd.runc.v2";

export class RuntimeSockets {
  private readonly euid: number;

  /**
   * `root` is this installation's own directory (`<socket_dir>/bay-<instance id>`),
   * made 0700 here if it does not exist; an existing one must be a real directory
   * owned by Bay's user, and every directory above it must be root's or Bay's and
   * not writable by other users (unless sticky, like /tmp). Anything else refuses
   * Bay's start.
   */
  constructor(
    readonly root: string,
    private readonly sweepGraceMs = SWEEP_GRACE_MS,
  ) {
    this.euid = process.geteuid?.() ?? 0;
    try {
      mkdirSync(dirname(root), { recursive: true });
      const st = lstatSync(root, { throwIfNoEntry: false });
      if (!st) mkdirSync(root, { mode: 0o700 });
      else if (!st.isDirectory() || st.uid !== this.euid) throw new Error("it exists and is not a directory of Bay's own user");
      chmodSync(root, 0o700);
      for (let dir = dirname(root); ; dir = dirname(dir)) {
        const up = lstatSync(dir);
        if (up.isSymbolicLink()) throw new Error(`${dir} is a symbolic link`);
        // Its owner could rename what is below it away and put a link in its place (as OpenSSH's StrictModes).
        if (up.uid !== 0 && up.uid !== this.euid) throw new Error(`${dir} belongs to another user (uid ${up.uid})`);
        if (up.mode & 0o022 && !(up.mode & 0o1000)) throw new Error(`${dir} is writable by other users`);
        if (dir === "/") break;
      }
    } catch (err) {
      throw new BayError("validation_error", `driver.socket_dir: ${root} cannot be Bay's own directory: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** The host directory of a container's socket. */
  dirOf(containerName: string): string {
    if (!NAME.test(containerName)) throw new BayError("internal_error", `unsafe container name for a socket directory: ${containerName}`);
    return join(this.root, containerName);
  }

  /** Creates the container's directory, open for Ship to bind in (the root stays 0700). */
  create(containerName: string): string {
    const dir = this.dirOf(containerName);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o777 });
    chmodSync(dir, 0o777); // past the umask: the container's user must be able to bind here
    return dir;
  }

  /**
   * Waits for Ship's socket, seals the directory and returns the endpoint. Fails
   * when the container stops first (`running` false), the deadline passes, or
   * anything but a socket is there.
   */
  async seal(containerName: string, running: () => Promise<boolean>, deadline: number): Promise<string> {
    const dir = this.dirOf(containerName);
    const path = join(dir, SOCKET_NAME);
    for (let polls = 1; ; polls++) {
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (st) {
        chmodSync(dir, 0o711);
        // Checked after the seal: nothing in the container can change it any more, as long
        // as the container's user is not Bay's own (the owner of a directory may always write to it).
        const d = lstatSync(dir);
        const now = lstatSync(path, { throwIfNoEntry: false });
        const invalid = (why: string) =>
          new BayError("ship_error", `the sandbox runtime's socket cannot be trusted: ${why}`, { details: { reason: "socket_invalid" } });
        if (!d.isDirectory() || d.uid !== this.euid || d.mode & 0o022) throw invalid("its directory is not sealed");
        if (!now?.isSocket()) throw invalid("it is not a socket");
        if (now.uid === this.euid) throw invalid("the runtime runs as Bay's own user, so its directory cannot be sealed against it");
        const entries = readdirSync(dir);
        if (entries.length !== 1) throw invalid(`its directory holds ${entries.length - 1} other entries`);
        return `${UNIX_ENDPOINT_PREFIX}${path}`;
      }
      if (Date.now() > deadline) {
        throw new BayError("session_not_ready", "the sandbox runtime did not open its socket in time", { retryAfter: 2 });
      }
      if (polls % 50 === 0 && !(await running())) {
        throw new BayError("session_not_ready", "the sandbox runtime exited before it opened its socket", { retryAfter: 1 });
      }
      await Bun.sleep(POLL_MS);
    }
  }

  /** Removes a container's directory; missing is fine. */
  remove(containerName: string): void {
    if (!NAME.test(containerName)) return;
    rmSync(this.dirOf(containerName), { recursive: true, force: true });
  }

  /** Removes directories whose container is gone (not in `live`), once past the grace period; returns how many. */
  sweep(live: Set<string>, now = Date.now()): number {
    let removed = 0;
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return 0;
    }
    for (const name of names) {
      // Only what create() makes: a directory named after a Bay container.
      if (live.has(name) || !NAME.test(name) || !name.startsWith("bay-")) continue;
      const st = lstatSync(join(this.root, name), { throwIfNoEntry: false });
      if (!st?.isDirectory() || now - st.mtimeMs < this.sweepGraceMs) continue;
      rmSync(join(this.root, name), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }
}
