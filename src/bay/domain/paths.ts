/**
 * The one workspace path rule, checked in Bay before any container starts, for
 * the sandbox file routes, the shell `cwd` and the workspace data plane alike
 * (Ship checks again against symlinks). A path is relative to /workspace and may
 * not escape it; its limits are the ones the kernel would otherwise enforce deep
 * inside Ship or the engine (ENAMETOOLONG), stated up front, plus a depth bound:
 * every segment of a path is checked for symlinks, so depth is a request's work.
 */
import { DOT_SEGMENT_REASON, endsInDotSegment, namesDirectory, WORKSPACE_ROOT_REASON } from "../../protocol/ship/constants.ts";
import { BayError } from "../errors.ts";

/**
 * Longest path, in UTF-8 bytes: Linux's PATH_MAX (4096, with the NUL) less headroom for
 * where Ship ("/workspace/") and the engine (its volume or container root) put it.
 */
export const MAX_PATH_BYTES = 3840;
/** Longest segment, in UTF-8 bytes (Linux's NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;
/** Most segments a path may have once normalised. */
export const MAX_PATH_DEPTH = 128;

/** Characters of a sent path an error shows at most (`details.path`): a refused one may be enormous. */
const SHOWN_PATH_CHARS = 256;

/** A path as an error shows it: as the client sent it, cut to SHOWN_PATH_CHARS (never inside a surrogate pair). */
export function shownPath(path: string): string {
  if (path.length <= SHOWN_PATH_CHARS) return path;
  const last = path.charCodeAt(SHOWN_PATH_CHARS - 1);
  return path.slice(0, last >= 0xd800 && last <= 0xdbff ? SHOWN_PATH_CHARS - 1 : SHOWN_PATH_CHARS);
}

function invalid(path: string, reason: string): BayError {
  return new BayError("invalid_path", `invalid path: ${reason}`, { details: { path: shownPath(path), reason } });
}

/**
 * Runs a file operation on the path a client sent. An error about that path (one with
 * a `details.path`: this rule's, Ship's or the volume's) names it as the client sent it
 * (`a//b/` stays `a//b/`), not as Bay normalised or forwarded it: the one rule of
 * `details.path` for the sandbox and the workspace file routes alike. Messages stay as
 * they were (they may show the normalised path).
 */
export async function onSentPath<T>(sent: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw asSent(e, sent);
  }
}

/** `e`, naming the path as the client sent it when it names one (the rule of onSentPath, for a synchronous check). */
export function asSent(e: unknown, sent: string): unknown {
  if (!(e instanceof BayError) || typeof e.details.path !== "string") return e;
  return e.withDetails({ ...e.details, path: shownPath(sent) });
}

/** A lone UTF-16 surrogate: no file name can hold it (UTF-8 has no encoding for it). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Returns the normalised relative path ("." for the root) or throws invalid_path.
 * Refuses absolute paths, `..` that escapes, NUL and control bytes, backslashes,
 * still-encoded dots, lone surrogates, and paths over MAX_PATH_BYTES, with a
 * segment over MAX_SEGMENT_BYTES or with more than MAX_PATH_DEPTH segments.
 */
export function normalizeWorkspacePath(path: string): string {
  if (path.length === 0) throw invalid(path, "empty");
  // Checked on the characters first, so an enormous input is refused before it is encoded.
  if (path.length > MAX_PATH_BYTES || Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) {
    throw invalid(path, `longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (LONE_SURROGATE.test(path)) throw invalid(path, "not valid Unicode (a lone surrogate)");
  if (/[\u0000-\u001f\u007f]/.test(path)) throw invalid(path, "contains a NUL or control character");
  if (path.includes("\\")) throw invalid(path, "contains a backslash");
  if (/%2e|%2f|%5c|%00/i.test(path)) throw invalid(path, "contains percent-encoded path characters");
  if (path.startsWith("/") || path.startsWith("~")) throw invalid(path, "must be relative to /workspace");
  const parts: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (Buffer.byteLength(seg, "utf8") > MAX_SEGMENT_BYTES) throw invalid(path, `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    if (seg === "..") {
      if (parts.length === 0) throw invalid(path, "escapes /workspace");
      parts.pop();
      continue;
    }
    parts.push(seg);
  }
  if (parts.length > MAX_PATH_DEPTH) throw invalid(path, `more than ${MAX_PATH_DEPTH} segments`);
  return parts.length === 0 ? "." : parts.join("/");
}

/**
 * The normalised path of a file to write (a text write or an upload): the rule
 * above, and neither the root nor a path that names a directory (`dir/`, which
 * would otherwise write a file named `dir`).
 */
export function normalizeFilePath(path: string): string {
  const rel = normalizeBelowRoot(path);
  // `dir/`, `dir/.` and `dir/sub/..` all name the directory `dir`, never a file in it.
  if (namesDirectory(path)) throw invalid(path, "names a directory, not a file");
  return rel;
}

/**
 * The normalised path of something to delete: the rule above, not the root, and not a
 * path ending in `.` or `..` (endsInDotSegment: `t/file/..` would delete `t`). A path
 * that names a directory by its form (namesDirectory: `dir/`) must find one; the deleting
 * side checks that (Ship, or the data plane's `remove` with `directory`).
 */
export function normalizeRemovablePath(path: string): string {
  const rel = normalizeBelowRoot(path);
  refuseDotSegmentEnd(path);
  return rel;
}

/**
 * Refuses, as given (before any normalising), a path to delete or move whose last
 * segment is `.` or `..` (endsInDotSegment): normalised it names another entry.
 */
export function refuseDotSegmentEnd(path: string): void {
  if (endsInDotSegment(path)) throw invalid(path, DOT_SEGMENT_REASON);
}

/** The rule above, and not the root itself (`.`, `./`, `a/..`). */
function normalizeBelowRoot(path: string): string {
  const rel = normalizeWorkspacePath(path);
  if (rel === ".") throw invalid(path, WORKSPACE_ROOT_REASON);
  return rel;
}
