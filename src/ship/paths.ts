import { lstat, realpath } from "node:fs/promises";
import { isAbsolute, join, normalize, sep } from "node:path";
import { ShipError } from "./errors.ts";

/** A user path checked against the workspace. */
export interface ResolvedPath {
  /** The path as given, normalised (e.g. "a/b.txt", "." for the root). */
  relative: string;
  /** Absolute path to operate on: symlinks of the existing part resolved. */
  absolute: string;
  /** Whether the path exists right now. */
  exists: boolean;
}

function invalid(path: string, reason: string): ShipError {
  return new ShipError("invalid_path", `invalid path ${JSON.stringify(path)}: ${reason}`, {
    details: { path, reason },
  });
}

function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(sep) ? root : root + sep);
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * Resolves a workspace-relative path. Refuses absolute paths, `..` escapes, NUL
 * bytes and anything whose real path (of the deepest existing ancestor, so this
 * also guards writes to new files) lies outside the workspace.
 */
export async function resolveWorkspacePath(workspace: string, input: string): Promise<ResolvedPath> {
  if (input.includes("\0")) throw invalid(input.replaceAll("\0", "\\0"), "contains a NUL byte");
  if (input === "") throw invalid(input, "empty path");
  if (isAbsolute(input)) throw invalid(input, "absolute paths are not allowed");
  const relative = normalize(input).replace(/\/+$/, "") || ".";
  if (relative === ".." || relative.startsWith(`..${sep}`)) {
    throw invalid(input, "escapes the workspace");
  }
  const root = await realpath(workspace);
  const target = join(root, relative);

  // Walk up to the deepest existing ancestor and check its real path.
  let probe = target;
  const missing: string[] = [];
  for (;;) {
    try {
      const real = await realpath(probe);
      if (!isInside(root, real)) throw invalid(input, "resolves outside the workspace");
      const absolute = missing.length ? join(real, ...missing.reverse()) : real;
      return { relative, absolute, exists: missing.length === 0 };
    } catch (err) {
      if (err instanceof ShipError) throw err;
      if (errCode(err) !== "ENOENT" && errCode(err) !== "ENOTDIR") throw err;
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
