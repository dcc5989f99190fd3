import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import { errorEventBody, ShipError } from "../errors.ts";
import { pathError } from "../paths.ts";
import { sseResponse } from "../sse.ts";
import { validate } from "../validation.ts";
import { DirWatcher, type WatchItem } from "../watch/dir-watcher.ts";
import { InotifyError } from "../watch/inotify.ts";
import type { WatchHub } from "../watch/watch-hub.ts";
import { workingDir } from "../working-dir.ts";

export interface WatchRouteOptions {
  workspace: string;
  hub: WatchHub;
  maxWatches: number;
  queueMax: number;
  maxDirs: number;
}

/** GET /filesystem/watch: an SSE stream of changes under a directory. */
export function watchRoutes(opts: WatchRouteOptions) {
  let active = 0;
  return new Hono().get(ops.watchFiles.honoPath, validate("query", ops.watchFiles.query), async (c) => {
    const { path, recursive } = c.req.valid("query");
    const target = await workingDir(opts.workspace, path, "the watched path");
    if (active >= opts.maxWatches) {
      throw new ShipError("quota_exceeded", `too many file watches (max ${opts.maxWatches})`, {
        details: { limit: opts.maxWatches, running: active },
      });
    }
    const watcher = new DirWatcher({
      hub: opts.hub,
      workspace: target.root,
      root: target.absolute,
      recursive,
      queueMax: opts.queueMax,
      maxDirs: opts.maxDirs,
    });
    try {
      watcher.start();
    } catch (e) {
      watcher.close();
      throw watchStartError(e, target.relative, opts.maxWatches);
    }
    active++;
    const requestId = c.req.header("x-request-id") ?? "";
    return sseResponse(
      c.req.raw.signal,
      async (sink) => {
        try {
          if (!(await sink.send("ready", { path: target.relative, recursive }))) return;
          for (;;) {
            const item: WatchItem | null = await watcher.next(sink.signal);
            if (!item) return;
            if (item.kind === "gone") {
              throw new ShipError("file_not_found", `the watched directory went away: ${target.relative}`, {
                details: { path: target.relative },
              });
            }
            const { kind, ...data } = item;
            if (!(await sink.send(kind === "change" ? "change" : "dropped", data))) return;
          }
        } finally {
          watcher.close();
          active--;
        }
      },
      (e) => errorEventBody(e, requestId),
    );
  });
}

/** inotify's errors that are the path's: it went, or may not be read. */
const PATH_CODES = new Set(["ENOENT", "EACCES", "ENOTDIR", "ELOOP"]);

/**
 * Why a watch could not start: a directory removed or locked by code in the sandbox is
 * that path's refusal; the kernel's watch limits (ENOSPC, EMFILE) are quota_exceeded.
 */
export function watchStartError(e: unknown, path: string, limit: number): unknown {
  if (!(e instanceof InotifyError)) return e;
  if (e.code && PATH_CODES.has(e.code)) return pathError(e, path);
  return new ShipError("quota_exceeded", "the kernel refused another file watch", { details: { limit } });
}
