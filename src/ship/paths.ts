import { accessSync, constants, statSync } from "node:fs";
import { lstat, mkdir, open, realpath, stat, type FileHandle } from "node:fs/promises";
import { isAbsolute, join, normalize, relative as relativePath, sep } from "node:path";
import { DOT_SEGMENT_REASON, NOT_A_DIRECTORY_REASON, PERMISSION_DENIED_REASON, WORKSPACE_ROOT_REASON } from "../protocol/ship/constants.ts";
import { ShipError } from "./errors.ts";

/**
 * Workspace path checks.
 *
 * A path is first resolved (realpath of its deepest existing part, which must lie
 * inside the workspace). User code can swap a directory for a symlink between that
 * check and the operation, so the operations never trust the path afterwards:
 * - reads (file, listing, download) open with O_NOFOLLOW and then check the open
 *   descriptor's own real path, `/proc/self/fd/N` (`openInside`);
 * - writes, uploads and deletes open the parent directory by walking down from the
 *   root with O_NOFOLLOW per component (`openParentDir`) and act on the entry as
 *   `/proc/self/fd/N/<name>`, which the kernel resolves to that very directory.
 */

/** A user path checked against the workspace. */
export interface ResolvedPath {
  /** Real path of the workspace root. */
  root: string;
  /** The path as given, normalised (e.g. "a/b.txt", "." for the root). */
  relative: string;
  /** Absolute path to operate on: symlinks of the existing part resolved. */
  absolute: string;
  /** Whether the path exists right now. */
  exists: boolean;
}

/** open(2) flags used by the file operations. */
export const O = constants;

/** A working directory as it is opened (absolute) and as the workspace names it (relative: what an error about it names). */
export interface CwdRef {
  absolute: string;
  relative: string;
}

/** A tree delete that could not finish: a note for the message, and where what is left now is. */
export interface TreeDeleteLeft {
  note: string;
  /** Absent once code in the sandbox moved the tree's directory out of the workspace. */
  details: { remaining_at?: string };
}

function invalid(path: string, reason: string, more?: TreeDeleteLeft): ShipError {
  return new ShipError("invalid_path", `invalid path ${JSON.stringify(path)}: ${reason}${more ? `; ${more.note}` : ""}`, {
    details: { path, reason, ...more?.details },
  });
}

/** A write to or delete of the workspace root itself. */
export function rootRefused(): ShipError {
  return invalid(".", WORKSPACE_ROOT_REASON);
}

/** A delete of a path ending in `/` (which must name a directory) whose entry is not one. */
export function notADirectory(path: string): ShipError {
  return invalid(path, NOT_A_DIRECTORY_REASON);
}

/**
 * A path the runtime's user may not change (code in the sandbox may chmod its files): found by a tool, not an fs call.
 * `more` adds a note to the message and details (a tree delete's `remaining_at`).
 */
export function permissionDenied(path: string, more?: TreeDeleteLeft): ShipError {
  return invalid(path, PERMISSION_DENIED_REASON, more);
}

/** A delete of a path ending in `.` or `..` (endsInDotSegment), which rm refuses too. */
export function dotSegmentRefused(path: string): ShipError {
  return invalid(path, DOT_SEGMENT_REASON);
}

/** Whether `candidate` (a real path) is `root` or lies below it. */
export function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The errno code of a failed fs call. */
export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * Maps an fs error on a user path to a ShipError: a missing path is file_not_found,
 * a symlink where none may be, a too long path, a file used as a directory or one
 * the runtime's user may not enter (code in the sandbox may chmod its files) are
 * invalid_path, a directory or special file where a regular file is needed is
 * validation_error, a file a running program holds (ETXTBSY, EBUSY) is a conflict,
 * and a full disk is payload_too_large (the write did not fit). Anything else is rethrown unchanged.
 */
export function pathError(err: unknown, path: string): unknown {
  switch (errCode(err)) {
    case "ENOENT":
      return new ShipError("file_not_found", `no such file or directory: ${path}`, { details: { path } });
    case "ELOOP":
      return invalid(path, "is a symlink or a symlink loop");
    case "ENAMETOOLONG":
      return invalid(path, "too long");
    case "ENOTDIR":
      return invalid(path, "a parent is not a directory");
    case "EACCES":
    case "EPERM":
      return invalid(path, PERMISSION_DENIED_REASON);
    case "EISDIR":
      return new ShipError("validation_error", `path is a directory: ${path}`, { details: { path } });
    case "ENXIO":
    case "ENODEV":
      return new ShipError("validation_error", `not a regular file: ${path}`, { details: { path } });
    case "ETXTBSY":
    case "EBUSY":
      return new ShipError("conflict", `in use by a running program: ${path}`, { details: { path, reason: "busy" } });
    case "ENOSPC":
    case "EDQUOT":
      return new ShipError("payload_too_large", `no space left for ${path}`, { details: { path, reason: "no_space" } });
    default:
      return err;
  }
}

/**
 * Why a process could not be started in `cwd` (absolute, and as the workspace names it):
 * a working directory removed since it was checked, or one the runtime's user may no
 * longer enter (code in the sandbox may chmod it), is that path's refusal. The same
 * errno from anything else (a program missing from PATH, a broken image) is Ship's
 * error, found by looking at the directory again; so is e.g. EAGAIN under a fork
 * bomb's pids limit, and Ship lives on.
 */
export function startError(err: unknown, cwd: CwdRef, what: string): unknown {
  const code = errCode(err);
  if (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES" || code === "EPERM") {
    try {
      accessSync(cwd.absolute, constants.X_OK);
      if (!statSync(cwd.absolute).isDirectory())
        return pathError(Object.assign(new Error("not a directory"), { code: "ENOTDIR" }), cwd.relative);
    } catch (e) {
      return pathError(e, cwd.relative);
    }
  }
  return new ShipError("internal_error", `could not start a ${what}: ${(err as Error).message}`);
}

/**
 * Checks and normalises a user path without touching the disk: refuses NUL bytes,
 * empty and absolute paths and `..` escapes. Returns e.g. "a/b.txt", "." for the root.
 */
export function normalizeUserPath(input: string): string {
  if (input.includes("\0")) throw invalid(input.replaceAll("\0", "\\0"), "contains a NUL byte");
  if (input === "") throw invalid(input, "empty path");
  if (isAbsolute(input)) throw invalid(input, "absolute paths are not allowed");
  const relative = normalize(input).replace(/\/+$/, "") || ".";
  if (relative === ".." || relative.startsWith(`..${sep}`)) {
    throw invalid(input, "escapes the workspace");
  }
  return relative;
}

/**
 * Resolves a workspace-relative path. Refuses absolute paths, `..` escapes, NUL
 * bytes and anything whose real path (of the deepest existing ancestor, so this
 * also guards writes to new files) lies outside the workspace.
 */
export async function resolveWorkspacePath(workspace: string, input: string): Promise<ResolvedPath> {
  const relative = normalizeUserPath(input);
  const root = await realpath(workspace);
  const target = join(root, relative);

  // Walk up to the deepest existing ancestor and check its real path.
  let probe = target;
  const missing: string[] = [];
  for (;;) {
    let real: string | null = null;
    try {
      real = await realpath(probe);
    } catch (err) {
      const code = errCode(err);
      if (code === "ELOOP") throw invalid(input, "symlink loop");
      if (code === "ENAMETOOLONG") throw invalid(input, "too long");
      if (code === "EACCES" || code === "EPERM") throw invalid(input, PERMISSION_DENIED_REASON);
      if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
    }
    if (real !== null) {
      if (!isInside(root, real)) throw invalid(input, "resolves outside the workspace");
      if (missing.length === 0) return { root, relative, absolute: real, exists: true };
      // It may vanish since realpath found it (a delete racing this call): that is a missing path, not a crash.
      const info = await stat(real).catch((err) => {
        throw pathError(err, relative);
      });
      if (!info.isDirectory()) throw invalid(input, "a parent is not a directory");
      return { root, relative, absolute: join(real, ...missing.reverse()), exists: false };
    }
    // realpath failed although the entry exists: a dangling symlink, which a
    // write would follow to wherever it points.
    const exists = await lstat(probe).then(
      () => true,
      () => false,
    );
    if (exists) throw invalid(input, "is a dangling symlink");
    if (probe === root) throw invalid(input, "workspace root is missing");
    const cut = probe.lastIndexOf(sep);
    missing.push(probe.slice(cut + 1));
    probe = probe.slice(0, cut) || sep;
  }
}

/** Like resolveWorkspacePath, but a missing path is `file_not_found`. */
export async function resolveExisting(workspace: string, input: string): Promise<ResolvedPath> {
  const resolved = await resolveWorkspacePath(workspace, input);
  if (!resolved.exists) {
    throw new ShipError("file_not_found", `no such file or directory: ${resolved.relative}`, {
      details: { path: resolved.relative },
    });
  }
  return resolved;
}

/**
 * Checks that an open descriptor's real path lies inside `root` (the second half of
 * the race-safe check: whatever the path pointed to when it was checked, this is what
 * was actually opened). Returns that real path; throws invalid_path otherwise.
 */
export async function assertFdInside(root: string, fd: number, shown: string): Promise<string> {
  // ENOENT: what was opened has been deleted since (a delete racing this call).
  const real = await realpath(`/proc/self/fd/${fd}`).catch((err) => {
    throw pathError(err, shown);
  });
  if (!isInside(root, real)) throw invalid(shown, "resolves outside the workspace");
  return real;
}

/**
 * Opens a resolved path with O_NOFOLLOW (its last part was already resolved, so a
 * symlink there now is a swap) and checks the descriptor; closes it on refusal.
 */
export async function openInside(target: ResolvedPath, flags: number, mode?: number): Promise<FileHandle> {
  const handle = await open(target.absolute, flags | O.O_NOFOLLOW, mode).catch((err) => {
    throw pathError(err, target.relative);
  });
  try {
    await assertFdInside(target.root, handle.fd, target.relative);
    return handle;
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
}

/** An open, checked parent directory and the race-free path of one entry in it. */
export interface ParentDir {
  handle: FileHandle;
  /** `/proc/self/fd/N/<name>`: the entry inside exactly this directory. */
  entry: string;
  name: string;
}

/**
 * Opens the parent directory of a resolved, non-root path by walking down from the
 * workspace root one component at a time with O_DIRECTORY|O_NOFOLLOW, each step
 * relative to the directory already open (and, with `create`, making missing ones
 * there). The resolved path has no symlinks, so one appearing meanwhile is refused
 * (invalid_path) instead of followed. Operations on `entry` then stay in this
 * directory whatever the path names later. The caller closes `handle`.
 */
export async function openParentDir(target: ResolvedPath, options: { create?: boolean } = {}): Promise<ParentDir> {
  const rel = relativePath(target.root, target.absolute);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw invalid(target.relative, "is the workspace root");
  const parts = rel.split(sep);
  const name = parts.pop()!;
  const dirFlags = O.O_RDONLY | O.O_DIRECTORY | O.O_NOFOLLOW;
  let dir = await open(target.root, O.O_RDONLY | O.O_DIRECTORY);
  try {
    for (const part of parts) {
      const next = `/proc/self/fd/${dir.fd}/${part}`;
      if (options.create) {
        await mkdir(next, 0o755).catch((err) => {
          if (errCode(err) !== "EEXIST") throw pathError(err, target.relative);
        });
      }
      const child = await open(next, dirFlags).catch((err) => {
        throw pathError(err, target.relative);
      });
      await dir.close();
      dir = child;
    }
    await assertFdInside(target.root, dir.fd, target.relative);
    return { handle: dir, entry: `/proc/self/fd/${dir.fd}/${name}`, name };
  } catch (err) {
    await dir.close().catch(() => {});
    throw err;
  }
}
