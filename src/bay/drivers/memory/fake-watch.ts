/**
 * File watch of the in-memory fake Ship: the watched tree is listed when the
 * watch starts and again every poll, and the differences are the changes
 * (`created` parents before children, `deleted`, `modified` when a file's size or
 * time moved). It sees every writer of the volume (the fake's routes and shell,
 * and Bay's workspace data plane), as inotify would. Where it is weaker than
 * Ship, it says so here: a rename is reported as `deleted` + `created` (a listing
 * cannot pair them), and a rewrite that keeps a file's size and time is not seen.
 * Nothing queues while a reader is slow (the next listing happens when it reads);
 * one poll's changes beyond `queueMax` are counted in a `dropped` event.
 */
import { BayError } from "../../errors.ts";
import type { VolumeFiles, VolumeRef } from "../driver.ts";
import { fileErrors } from "../volume-walk.ts";

interface Seen {
  dir: boolean;
  size: number;
  mtime: number;
}

export interface FakeWatchOptions {
  files: VolumeFiles;
  volume: VolumeRef;
  /** The watched directory, normalised ("." for the root). */
  root: string;
  recursive: boolean;
  queueMax: number;
  pollMs: number;
}

export type WatchEvent = { event: "ready" | "change" | "dropped"; data: Record<string, unknown> };

const LIST = { maxEntries: 10_000, timeoutMs: 60_000 };
const join = (dir: string, name: string) => (dir === "." ? name : `${dir}/${name}`);

async function snapshot(o: FakeWatchOptions): Promise<Map<string, Seen> | null> {
  const root = await o.files.stat(o.volume, o.root);
  if (root?.kind !== "directory") return null;
  const seen = new Map<string, Seen>();
  const walk = async (dir: string) => {
    const { entries } = await o.files.list(o.volume, dir, LIST).catch(() => ({ entries: [] }));
    for (const e of entries) {
      const path = join(dir, e.name);
      seen.set(path, { dir: e.kind === "directory", size: e.size, mtime: e.modifiedAt });
      if (o.recursive && e.kind === "directory") await walk(path);
    }
  };
  await walk(o.root);
  return seen;
}

/** Checks the directory before the stream starts: missing 404, not a directory 400. */
export async function checkWatchRoot(files: VolumeFiles, volume: VolumeRef, root: string): Promise<void> {
  const st = await files.stat(volume, root);
  if (!st) throw fileErrors.notFound(root);
  if (st.kind !== "directory") throw new BayError("validation_error", `not a directory: ${root}`, { details: { path: root } });
}

/** The watch's events until `signal` aborts; throws file_not_found when the directory goes away. */
export async function* watchTree(o: FakeWatchOptions, signal: AbortSignal): AsyncGenerator<WatchEvent> {
  let before = await snapshot(o);
  if (!before) throw fileErrors.notFound(o.root);
  yield { event: "ready", data: { path: o.root, recursive: o.recursive } };
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, o.pollMs));
    const now = await snapshot(o);
    if (!now) throw new BayError("file_not_found", `the watched directory went away: ${o.root}`, { details: { path: o.root } });
    const changes: Array<Record<string, unknown>> = [];
    for (const [path, s] of [...now].sort(([a], [b]) => a.localeCompare(b))) {
      const was = before.get(path);
      if (!was || was.dir !== s.dir) changes.push({ type: "created", path, is_dir: s.dir });
      else if (!s.dir && (was.size !== s.size || was.mtime !== s.mtime)) changes.push({ type: "modified", path, is_dir: false });
    }
    for (const [path, s] of [...before].sort(([a], [b]) => b.localeCompare(a))) {
      if (!now.has(path)) changes.push({ type: "deleted", path, is_dir: s.dir });
    }
    before = now;
    for (const c of changes.slice(0, o.queueMax)) yield { event: "change", data: c };
    if (changes.length > o.queueMax) yield { event: "dropped", data: { count: changes.length - o.queueMax, reason: "queue_full" } };
  }
}
