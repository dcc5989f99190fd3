/**
 * Upload temporaries a dead Ship left behind. An upload is written to
 * `<workspace>/.ship-upload-<12 hex>.tmp` and renamed into place when its body is
 * complete (transfer.ts); a Ship killed or stopped in the middle never removes its
 * file, which then stays in the workspace for good, counted against its size limit
 * (review s41). Ship removes such files once nothing can still be writing them: a
 * live upload writes at least every `idleMs` or is cut, so one untouched for
 * STALE_FACTOR × idleMs (and at least MIN_STALE_MS) belongs to no upload. Only
 * regular files with exactly that name, in the workspace's top directory: a link
 * or a directory by that name is left alone (unlink never follows a link).
 */
import { lstat, readdir, realpath, unlink } from "node:fs/promises";
import { join } from "node:path";

export const UPLOAD_TEMP = /^\.ship-upload-[0-9a-f]{12}\.tmp$/;
const STALE_FACTOR = 2;
const MIN_STALE_MS = 10 * 60_000;
/** How often a running Ship looks again. */
export const SWEEP_EVERY_MS = 10 * 60_000;

/** Removes stale upload temporaries from `workspace`; the names removed. Never throws. */
export async function sweepUploadTemps(workspace: string, idleMs: number, now = Date.now()): Promise<string[]> {
  const staleMs = Math.max(MIN_STALE_MS, STALE_FACTOR * idleMs);
  const removed: string[] = [];
  try {
    const root = await realpath(workspace);
    for (const name of await readdir(root)) {
      if (!UPLOAD_TEMP.test(name)) continue;
      const path = join(root, name);
      const st = await lstat(path).catch(() => null);
      if (!st?.isFile() || now - st.mtimeMs < staleMs) continue;
      await unlink(path).then(
        () => removed.push(name),
        () => {},
      );
    }
  } catch {
    // an unreadable workspace: nothing to sweep now
  }
  return removed;
}

/** Sweeps now and every SWEEP_EVERY_MS; the returned function stops it. */
export function sweepUploadTempsPeriodically(workspace: string, idleMs: number): () => void {
  const sweep = () => void sweepUploadTemps(workspace, idleMs);
  sweep();
  const timer = setInterval(sweep, SWEEP_EVERY_MS);
  timer.unref?.();
  return () => clearInterval(timer);
}
