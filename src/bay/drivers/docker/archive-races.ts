/**
 * What code in a sandbox can do to the workspace routes' archive transfers by racing
 * them: swap a directory on the path for a symlink (`d -> /`) between Bay's walk of the
 * path and the engine's transfer, which resolves symlinks inside the helper's root
 * (review s53, s55).
 *
 * - A read or stat the engine fails under the race (a bare 500, or a tar cut before its
 *   first byte) is tried again (`retryRaced`): the next attempt walks the path again and
 *   answers what it finds. When every attempt met the race (the engine's own walk of the
 *   path found an entry changing under it), the answer is the path's refusal, as a write's
 *   is, not an internal error: the sandbox keeps changing it.
 * - A write the engine unpacked through such a symlink lands in the helper's own root
 *   (empty, archive-root.ts, and gone with the helper; `ReadonlyRootfs` binds only a
 *   started container, and a helper is never started). The engine's list of the
 *   helper's changes shows it (`escapedWrite`): the answer is then the path's refusal,
 *   never a 200 for bytes that may not have been kept.
 */
import type Docker from "dockerode";
import { BayError } from "../../errors.ts";
import { WORKSPACE_MOUNT } from "./container-config.ts";
import { prefixOf, segmentsOf } from "../volume-walk.ts";
import { raceDeadline } from "./docker-errors.ts";

/** Attempts of a raced stat or read, in all. */
export const RACED_ATTEMPTS = 3;
/** Pause before the next attempt, times the attempt's number. */
const RETRY_PAUSE_MS = 20;

/** Whether a data-plane error is what the race makes the engine answer (and no deadline fired). */
const raced = (err: unknown): boolean =>
  err instanceof BayError && err.code === "internal_error" && (err.internal.engine_status === 500 || err.internal.cut === true);

/**
 * What the engine says, at the end of its message, when its own walk of a path (resolving
 * symlinks inside the helper's root) finds an entry changing under it: a link read that is
 * a directory now, a directory that is a file or a link now.
 */
const ENTRY_CHANGED = ["not a directory", "too many levels of symbolic links"];

/**
 * Whether the engine's message says an entry of `path` itself changed under its walk: it
 * ends with the entry it failed on, `path` or a directory on it inside the helper's
 * workspace mount on overlay2's merged root (`…/merged/workspace/d`), then one of
 * ENTRY_CHANGED (or, after `readlink`, `invalid argument`). Anchored at both ends, so
 * neither a fault of the engine or the host (a broken layer link, a volume that will not
 * mount, an I/O error) nor a path whose own name holds those words reads as a race: those
 * stay internal errors (reviews s66, s67).
 */
function entryOfPathChanged(message: string, path: string): boolean {
  const text = message.trimEnd();
  const segments = segmentsOf(path);
  for (let n = 1; n <= segments.length; n++) {
    const named = `/merged${WORKSPACE_MOUNT}/${prefixOf(segments, n)}`;
    if (ENTRY_CHANGED.some((what) => text.endsWith(`${named}: ${what}`))) return true;
    if (text.startsWith("readlink /") && text.endsWith(`${named}: invalid argument`)) return true;
  }
  return false;
}

/**
 * Runs `fn` again, up to RACED_ATTEMPTS in all, while it fails as a race makes it fail.
 * When the last attempt too failed with an entry of `path` changing under the engine
 * (entryOfPathChanged), the answer is the path's refusal (racedPath), not an internal error.
 * (A stat's or a walk's failures come from HEAD requests, which carry no message: they stay
 * internal errors.)
 */
export async function retryRaced<T>(fn: () => Promise<T>, path: string, op: "read" | "stat" | "write"): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!raced(err)) throw err;
      if (attempt >= RACED_ATTEMPTS) {
        const message = String((err as BayError).internal.engine_message ?? "");
        throw entryOfPathChanged(message, path) ? racedPath(path, op, { engine_message: message, attempts: attempt }) : err;
      }
      await Bun.sleep(RETRY_PAUSE_MS * attempt);
    }
  }
}

/** The answer to a read, stat or write walk that met an entry of its path changing (a symlink swapped in and out) on every attempt. */
export const racedPath = (path: string, op: "read" | "stat" | "write", internal: Record<string, unknown> = {}) =>
  new BayError("invalid_path", `invalid path: ${path}: an entry on it kept changing (a symlink swapped in and out) during the ${op}`, {
    details: { path, reason: `changed during the ${op}` },
    internal: { operation: `workspace ${op}`, ...internal },
  });

/**
 * Whether anything outside the workspace mount changed in a helper: a write that went
 * through a symlink. When the engine cannot say (its changes endpoint refused, say by a
 * socket proxy, or an answer that is no list), the write counts as kept, as before this
 * check: the write is in the volume in every case but the race's, and a failed check
 * must not turn a kept write into an error.
 */
export async function escapedWrite(docker: Docker, helper: string, signal: AbortSignal): Promise<boolean> {
  let changes: unknown;
  try {
    // dockerode hands the engine's answer back as it came: JSON, `null` for no change.
    const raw = await raceDeadline(docker.getContainer(helper).changes({ abortSignal: signal }) as Promise<unknown>, signal);
    changes = JSON.parse(Buffer.isBuffer(raw) ? raw.toString("utf8") : typeof raw === "string" ? raw : JSON.stringify(raw));
  } catch {
    return false;
  }
  if (!Array.isArray(changes)) return false;
  return changes.some(
    (c: { Path?: unknown }) => typeof c?.Path === "string" && c.Path !== WORKSPACE_MOUNT && !c.Path.startsWith(`${WORKSPACE_MOUNT}/`),
  );
}

/** The answer to a write during which code in the sandbox swapped an entry on its path: the bytes may not have been kept. */
export const racedWrite = (path: string, internal: Record<string, unknown> = {}) =>
  new BayError(
    "invalid_path",
    `invalid path: ${path}: an entry on it changed (a symlink swapped in) during the write, which may not have been kept`,
    {
      details: { path, reason: "changed during the write" },
      internal: { operation: "workspace write", ...internal },
    },
  );
