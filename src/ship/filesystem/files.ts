import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { lstat, open, opendir, readlink, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative as relativePath, sep } from "node:path";
import { endsInDotSegment, namesDirectory } from "../../protocol/ship/constants.ts";
import { notText, utf8Text } from "../../protocol/text-file.ts";
import { ShipError } from "../errors.ts";
import {
  O,
  assertFdInside,
  dotSegmentRefused,
  normalizeUserPath,
  notADirectory,
  openInside,
  openParentDir,
  type ParentDir,
  pathError,
  permissionDenied,
  resolveExisting,
  resolveWorkspacePath,
  rootRefused,
} from "../paths.ts";

/** One directory listing entry. */
export interface DirEntry {
  name: string;
  path: string;
  is_file: boolean;
  is_dir: boolean;
  size: number;
  modified_time: string;
}

/** Most entries one listing returns; a bigger directory answers `truncated: true`. */
export const MAX_LIST_ENTRIES = 10_000;

/** Throws validation_error unless `info` is a regular file. */
export function requireRegularFile(info: Stats, path: string): void {
  if (info.isFile()) return;
  const what = info.isDirectory() ? "path is a directory" : "not a regular file";
  throw new ShipError("validation_error", `${what}: ${path}`, { details: { path } });
}

/** Reads at most `limit` bytes from the handle's current position. */
async function readUpTo(handle: FileHandle, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const buf = Buffer.allocUnsafe(Math.min(limit - total, 1024 * 1024));
    const { bytesRead } = await handle.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
  }
  return Buffer.concat(chunks, total);
}

/**
 * Reads a UTF-8 text file, refusing files over `maxBytes` and files that are not
 * text (src/protocol/text-file.ts: the same rule as a workspace's text read).
 * Opened non-blocking and without following a last symlink, then checked: only a
 * regular file inside the workspace is read (a FIFO or device would block or never end).
 */
export async function readTextFile(workspace: string, path: string, maxBytes: number): Promise<{ path: string; content: string }> {
  const target = await resolveExisting(workspace, path);
  const handle = await openInside(target, O.O_RDONLY | O.O_NONBLOCK);
  try {
    const info = await handle.stat();
    requireRegularFile(info, target.relative);
    const tooLarge = (size: number) =>
      new ShipError("payload_too_large", `file is larger than ${maxBytes} bytes; use download`, {
        details: { path: target.relative, size, limit: maxBytes },
      });
    if (info.size > maxBytes) throw tooLarge(info.size);
    // One byte more than allowed tells a file that grew since fstat.
    const bytes = await readUpTo(handle, maxBytes + 1);
    if (bytes.length > maxBytes) throw tooLarge(bytes.length);
    const content = utf8Text(bytes);
    if (content === null) {
      // Relative to the sandbox's routes: Ship does not know the id Bay serves it under.
      const download = `filesystem/download?path=${encodeURIComponent(target.relative)}`;
      const { message, details } = notText(target.relative, download);
      throw new ShipError("validation_error", message, { details });
    }
    return { path: target.relative, content };
  } finally {
    await handle.close();
  }
}

/**
 * Writes a text file, creating parent directories. The file is opened inside its
 * checked parent without O_TRUNC, checked to be a regular file, and only then truncated.
 */
export async function writeTextFile(
  workspace: string,
  path: string,
  content: string,
): Promise<{ status: "ok"; path: string; size: number }> {
  const target = await resolveWorkspacePath(workspace, path);
  if (target.relative === ".") throw rootRefused();
  const parent = await openParentDir(target, { create: true });
  try {
    const handle = await open(parent.entry, O.O_WRONLY | O.O_CREAT | O.O_NOFOLLOW | O.O_NONBLOCK, 0o644).catch((err) => {
      throw pathError(err, target.relative);
    });
    try {
      requireRegularFile(await handle.stat(), target.relative);
      await assertFdInside(target.root, handle.fd, target.relative);
      const bytes = Buffer.from(content, "utf8");
      await handle.truncate(0);
      await handle.writeFile(bytes).catch((err) => {
        throw pathError(err, target.relative);
      });
      return { status: "ok", path: target.relative, size: bytes.byteLength };
    } finally {
      await handle.close();
    }
  } finally {
    await parent.handle.close();
  }
}

/** Runs of `rm -rf` a delete gets before it gives up on a tree that keeps changing. */
const RM_ATTEMPTS = 5;

/**
 * Deletes a file or a directory tree; a symlink is removed itself, never its target.
 * The workspace root is refused. Only the parent is resolved; the entry is looked at
 * with lstat inside the checked parent directory. A directory is first renamed into
 * the workspace root (a fixed place no symlink swap can redirect) and removed from
 * there by GNU `rm -rf`, which walks the tree with openat/O_NOFOLLOW and so never
 * follows a symlink swapped in while it deletes. A crash mid-way can leave a
 * `.ship-delete-*` directory in the root. A path ending in `/` (namesDirectory) must
 * name a directory: a file or a symlink there is refused, as `rm -r file/` refuses it;
 * one ending in `.` or `..` (endsInDotSegment) is refused outright, as rm refuses it.
 */
export async function deletePath(workspace: string, path: string): Promise<{ status: "ok" }> {
  const relative = normalizeUserPath(path);
  if (relative === ".") throw rootRefused();
  if (endsInDotSegment(path)) throw dotSegmentRefused(path);
  const parentPath = await resolveExisting(workspace, dirname(relative));
  const target = {
    root: parentPath.root,
    relative,
    absolute: join(parentPath.absolute, basename(relative)),
    exists: true,
  };
  if (target.absolute === target.root) throw rootRefused();
  const parent = await openParentDir(target);
  try {
    const info = await lstat(parent.entry).catch((err) => {
      throw pathError(err, relative);
    });
    if (namesDirectory(path) && !info.isDirectory()) throw notADirectory(path);
    if (!info.isDirectory()) {
      await unlink(parent.entry).catch((err) => {
        throw pathError(err, relative);
      });
      return { status: "ok" };
    }
    const staged = join(target.root, `.ship-delete-${randomBytes(6).toString("hex")}`);
    await rename(parent.entry, staged).catch((err) => {
      throw pathError(err, relative);
    });
    const { code, stderr } = await removeStaged(staged);
    if (code !== 0) throw await failedTreeDelete(relative, stderr, staged, parent, target.root);
    return { status: "ok" };
  } finally {
    await parent.handle.close();
  }
}

/**
 * `rm -rf` of a staged tree. A writer that opened a directory of the tree before the
 * rename can still add an entry after rm has read that directory ("Directory not
 * empty"): tried again. An rm that cannot start (code in the sandbox filled its process
 * limit) is a failure like any other, never an exception past the put-back.
 */
async function removeStaged(staged: string): Promise<{ code: number; stderr: string }> {
  let code = 0;
  let stderr = "";
  for (let attempt = 0; attempt < RM_ATTEMPTS; attempt++) {
    try {
      // C locale: rm's reasons in English, matched at a line's end (a file's name cannot end a line: rm escapes newlines).
      const rm = Bun.spawn(["rm", "-rf", "--", staged], {
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        env: { ...process.env, LC_ALL: "C" },
      });
      [code, stderr] = await Promise.all([rm.exited, new Response(rm.stderr).text()]);
    } catch (err) {
      [code, stderr] = [-1, `rm did not start: ${err instanceof Error ? err.message : String(err)}`];
    }
    if (code === 0) break;
  }
  return { code, stderr };
}

/**
 * A tree rm could not finish: it removed what it could. What is left is put back into
 * its directory; when that fails too (code in the sandbox made a new entry by that
 * name meanwhile) it stays in the root's `.ship-delete-*` directory. The answer says
 * where (`remaining_at`, relative to the workspace), read from the directory itself,
 * which code in the sandbox may have moved meanwhile; so nothing is lost without a word.
 */
async function failedTreeDelete(relative: string, stderr: string, staged: string, parent: ParentDir, root: string): Promise<ShipError> {
  const putBack = await rename(staged, parent.entry).then(
    () => true,
    () => false,
  );
  const remainingAt = putBack ? await whereNow(parent, root) : basename(staged);
  // rm's words name the staging path (and the workspace's): logged, never answered.
  console.error(
    `[ship] rm of ${relative} failed (what is left is at ${remainingAt ?? "a directory moved out of the workspace"}): ${stderr.trim().split("\n")[0]}`,
  );
  const left =
    remainingAt === null
      ? "what is left of it is back in its directory, which code in the sandbox moved out of the workspace"
      : remainingAt === relative
        ? "what is left of it is back in place"
        : `what is left of it is in ${remainingAt}`;
  const at = remainingAt === null ? {} : { remaining_at: remainingAt };
  // Something inside that the runtime's user may not change (a read-only directory, as Go's
  // module cache makes): the path's refusal.
  if (/: (Permission denied|Operation not permitted|Read-only file system)$/m.test(stderr)) {
    return permissionDenied(relative, { note: `part of it could not be deleted; ${left}`, details: at });
  }
  // Code in the sandbox kept adding to the tree while it was deleted.
  if (/: Directory not empty$/m.test(stderr)) {
    return new ShipError("conflict", `${relative} was being written to while it was deleted; ${left}`, {
      details: { path: relative, ...at },
    });
  }
  // Anything else that stops rm is the sandbox's own doing too (its process limit, a kill of rm): a conflict
  // with the sandbox's state, which Bay passes on with its details (an internal_error would lose them).
  return new ShipError("conflict", `could not delete ${relative}; ${left}`, { details: { path: relative, ...at } });
}

/** Where the entry `parent.name` of an open directory is now, relative to the root; null once outside it. */
async function whereNow(parent: ParentDir, root: string): Promise<string | null> {
  const dir = await readlink(`/proc/self/fd/${parent.handle.fd}`).catch(() => null);
  if (dir === null || dir.endsWith(" (deleted)")) return null;
  const rel = relativePath(root, dir);
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return null;
  return rel === "" ? parent.name : join(rel, parent.name);
}

/**
 * Lists a directory; entry paths are relative to the workspace. At most
 * MAX_LIST_ENTRIES entries are read (then `truncated` is true); those are sorted by name.
 */
export async function listDirectory(
  workspace: string,
  path: string,
  limit = MAX_LIST_ENTRIES,
): Promise<{ path: string; entries: DirEntry[]; truncated: boolean }> {
  const target = await resolveExisting(workspace, path);
  const handle = await openInside(target, O.O_RDONLY | O.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isDirectory()) {
      throw new ShipError("validation_error", `not a directory: ${target.relative}`, {
        details: { path: target.relative },
      });
    }
    const here = `/proc/self/fd/${handle.fd}`;
    const names: string[] = [];
    let truncated = false;
    const dir = await opendir(here);
    try {
      for (let entry = await dir.read(); entry; entry = await dir.read()) {
        if (names.length === limit) {
          truncated = true;
          break;
        }
        names.push(entry.name);
      }
    } finally {
      await dir.close().catch(() => {});
    }
    names.sort();
    const entries: DirEntry[] = [];
    for (const name of names) {
      // lstat: a symlink is listed as itself (neither file nor dir, the link's own size and
      // mtime), never as its target, which may lie outside the workspace.
      const info = await lstat(`${here}/${name}`).catch(() => null);
      if (!info) continue; // vanished meanwhile
      entries.push({
        name,
        path: target.relative === "." ? name : join(target.relative, name),
        is_file: info.isFile(),
        is_dir: info.isDirectory(),
        size: info.size,
        modified_time: info.mtime.toISOString(),
      });
    }
    return { path: target.relative, entries, truncated };
  } finally {
    await handle.close();
  }
}
