/**
 * What every VolumeFiles implementation answers alike: the errors of the data
 * plane and the rule for walking a path down a volume (no symlink on the way, every
 * parent a directory). Implementations gather the `lstat` of each prefix their own
 * way and hand the chain to `walkChain`.
 */
import { NOT_A_DIRECTORY_REASON, PERMISSION_DENIED_REASON } from "../../protocol/ship/constants.ts";
import { BayError } from "../errors.ts";
import type { FileStat } from "./driver.ts";

/** The data plane's errors, with the same codes, messages and details from every implementation. */
export const fileErrors = {
  notFound: (path: string) => new BayError("file_not_found", `file not found: ${path}`, { details: { path } }),
  symlink: (path: string, at: string) =>
    new BayError("invalid_path", `invalid path: ${at} is a symlink`, { details: { path, reason: "symlink" } }),
  parentNotDirectory: (path: string, at: string) =>
    new BayError("invalid_path", `invalid path: ${at} is not a directory`, { details: { path, reason: "a parent is not a directory" } }),
  root: (path: string) => new BayError("invalid_path", "invalid path: not the volume root", { details: { path, reason: "root" } }),
  isDirectory: (path: string) => new BayError("validation_error", `path is a directory: ${path}`, { details: { path } }),
  notDirectory: (path: string) => new BayError("validation_error", `not a directory: ${path}`, { details: { path } }),
  notRegularFile: (path: string) => new BayError("validation_error", `not a regular file: ${path}`, { details: { path } }),
  /** A directory uid 1000 may not read or enter (code in the sandbox ran chmod on it), as Ship answers it. */
  permissionDenied: (path: string) =>
    new BayError("invalid_path", `invalid path: ${path}: ${PERMISSION_DENIED_REASON}`, {
      details: { path, reason: PERMISSION_DENIED_REASON },
    }),
  /**
   * A tree delete that met something inside uid 1000 may not remove (a read-only directory, as Go's module cache
   * makes): what could go is gone, the rest stays where it was, as Ship answers it.
   */
  partlyDeleted: (path: string) =>
    new BayError(
      "invalid_path",
      `invalid path: ${path}: ${PERMISSION_DENIED_REASON}; part of it could not be deleted; what is left of it is in place`,
      {
        details: { path, reason: PERMISSION_DENIED_REASON, remaining_at: path },
      },
    ),
  /** A removal of `path/` (RemoveOptions.directory) whose entry is not a directory. */
  notADirectory: (path: string) =>
    new BayError("invalid_path", `invalid path: ${path} ${NOT_A_DIRECTORY_REASON}`, { details: { path, reason: NOT_A_DIRECTORY_REASON } }),
};

/** The segments of a normalised path ("." has none). */
export const segmentsOf = (path: string): string[] => (path === "." ? [] : path.split("/"));

/** The path of the first `n` segments. */
export const prefixOf = (segments: string[], n: number): string => (n === 0 ? "." : segments.slice(0, n).join("/"));

/** What walking a path found. */
export interface Walked {
  /** The entry at the end of the path; null when it (or a parent) is missing. */
  target: FileStat | null;
  /** Parents to create for a write, outermost first (relative paths). */
  missingDirs: string[];
}

/**
 * Applies the walking rule to `chain`, where chain[i] is the `lstat` of the first
 * i+1 segments of `path`, which is not the root (null: missing; the chain may end
 * after its first null).
 * A symlink on the way, or at the end unless `finalLink` is "allow", and a parent
 * that is not a directory are refused with invalid_path.
 */
export function walkChain(path: string, chain: ReadonlyArray<FileStat | null>, finalLink: "refuse" | "allow" = "refuse"): Walked {
  const segments = segmentsOf(path);
  const last = segments.length - 1;
  if (last < 0) throw fileErrors.root(path);
  for (let i = 0; i <= last; i++) {
    const st = chain[i] ?? null;
    if (!st) {
      const missingDirs: string[] = [];
      for (let j = i; j < last; j++) missingDirs.push(prefixOf(segments, j + 1));
      return { target: null, missingDirs };
    }
    if (st.kind === "symlink" && !(i === last && finalLink === "allow")) throw fileErrors.symlink(path, prefixOf(segments, i + 1));
    if (i < last && st.kind !== "directory") throw fileErrors.parentNotDirectory(path, prefixOf(segments, i + 1));
  }
  return { target: chain[last] ?? null, missingDirs: [] };
}
