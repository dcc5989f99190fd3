/**
 * Workspace path rules, checked in Bay before any container starts (Ship checks
 * again against symlinks). A path is relative to /workspace and may not escape it.
 */
import { BayError } from "../errors.ts";

export const MAX_PATH_LENGTH = 4096;
const MAX_SEGMENT_LENGTH = 255;

function invalid(path: string, reason: string): BayError {
  return new BayError("invalid_path", `invalid path: ${reason}`, { details: { path: path.slice(0, 256), reason } });
}

/**
 * Returns the normalised relative path ("." for the root) or throws invalid_path.
 * Refuses absolute paths, `..` that escapes, NUL and control bytes, backslashes,
 * still-encoded dots, and overlong paths or segments.
 */
export function normalizeWorkspacePath(path: string): string {
  if (path.length === 0) throw invalid(path, "empty");
  if (path.length > MAX_PATH_LENGTH) throw invalid(path, `longer than ${MAX_PATH_LENGTH} characters`);
  if (/[\u0000-\u001f\u007f]/.test(path)) throw invalid(path, "contains a NUL or control character");
  if (path.includes("\\")) throw invalid(path, "contains a backslash");
  if (/%2e|%2f|%5c|%00/i.test(path)) throw invalid(path, "contains percent-encoded path characters");
  if (path.startsWith("/") || path.startsWith("~")) throw invalid(path, "must be relative to /workspace");
  const parts: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg.length > MAX_SEGMENT_LENGTH) throw invalid(path, `a segment is longer than ${MAX_SEGMENT_LENGTH} characters`);
    if (seg === "..") {
      if (parts.length === 0) throw invalid(path, "escapes /workspace");
      parts.pop();
      continue;
    }
    parts.push(seg);
  }
  return parts.length === 0 ? "." : parts.join("/");
}
