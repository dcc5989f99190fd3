/** How a file watch opens the directories it walks: by descriptor, never through a symlink. */
import { closeSync, fstatSync, openSync, readlinkSync, statSync } from "node:fs";

/**
 * A directory opened as a place, not for reading (Linux's O_PATH | O_DIRECTORY |
 * O_NOFOLLOW): never through a symlink in the last place, and what its descriptor
 * holds stays that directory whatever is renamed or swapped around it.
 */
export const AT_DIR = 0o10000000 | 0o200000 | 0o400000;
export const fdPath = (fd: number): string => `/proc/self/fd/${fd}`;

/**
 * Whether a failed call (an fs call's error or an InotifyError, both named by `code`)
 * means the directory is not there as a directory: gone, or something else in its
 * place. For an open (AT_DIR, which never follows a symlink) a symlink now in its
 * place (ELOOP) is that too.
 */
export const gone = (e: unknown, opening = false): boolean => {
  const code = (e as { code?: unknown }).code;
  return code === "ENOENT" || code === "ENOTDIR" || (opening && code === "ELOOP");
};
/** The longest path the walk goes to, as the path-based walk it replaced could (PATH_MAX). */
export const MAX_PATH = 4095;

/**
 * `dir` opened (AT_DIR) only when it is there as that very path (no symlink on the
 * way): else null. Throws what else refused it (EACCES on the way, out of descriptors).
 */
export function openExact(dir: string): number | null {
  let fd: number;
  try {
    fd = openSync(dir, AT_DIR);
  } catch (e) {
    if (gone(e, true)) return null;
    throw e;
  }
  if (isAt(fd, dir)) return fd;
  closeSync(fd);
  return null;
}

/** Whether the directory the descriptor `fd` holds is at exactly `path` now. */
export function isAt(fd: number, path: string): boolean {
  try {
    return readlinkSync(fdPath(fd)) === path;
  } catch {
    return false;
  }
}

/** A directory's identity (device and inode). */
const idOf = (st: { dev: number; ino: number }): string => `${st.dev}:${st.ino}`;

/** The identity of the directory at `path` (a descriptor's /proc/self/fd/N: the one it holds); "" when it went meanwhile. */
export function dirIdAt(path: string): string {
  try {
    return idOf(statSync(path));
  } catch {
    return "";
  }
}

/**
 * The directory at exactly `holder` (openExact) when it is the directory `id` names:
 * "behind" when it is not (another, or none, is there now; or it cannot be opened).
 */
export function openHolder(holder: string, id: string): number | "behind" {
  let dir: number | null;
  try {
    dir = openExact(holder);
  } catch {
    return "behind";
  }
  if (dir === null) return "behind";
  try {
    if (idOf(fstatSync(dir)) === id) return dir;
  } catch {
    // fall through: not the one
  }
  closeSync(dir);
  return "behind";
}

/**
 * The directory `name` in the directory `dir` holds (a descriptor), opened (AT_DIR) through
 * it: null when `name` is not there as a directory, or is no single entry of it. Throws what
 * else refused it (EACCES, no descriptor left).
 */
export function openChild(dir: number, name: string): number | null {
  // One entry of the holder, never a way out of it (inotify names none such: hardening).
  if (name === "" || name === "." || name === ".." || name.includes("/")) return null;
  try {
    return openSync(`${fdPath(dir)}/${name}`, AT_DIR);
  } catch (e) {
    if (gone(e, true)) return null;
    throw e;
  }
}

/** Closes each descriptor, each once: one that fails to close does not keep the rest open. */
export function closeAll(fds: Iterable<number>): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // closed or never ours: the rest are still closed
    }
  }
}
