/**
 * envd's Filesystem service on Bay: Stat, ListDir, MakeDir, Move and Remove on
 * the sandbox's workspace (`/home/user` is `/workspace`), and WatchDir over Bay's
 * file watch (start, then one event per change, keepalives while quiet; the
 * stream ends with an error when the directory or the sandbox goes away), and the
 * polling watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher: polling-watchers.ts)
 * on the same watch.
 */
import { create } from "@bufbuild/protobuf";
import { streamEndCode } from "./connect-errors.ts";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { refuseDotSegmentEnd } from "../../domain/paths.ts";
import type { SandboxFiles } from "../../domain/sandbox-files.ts";
import type { SandboxWatch } from "../../domain/sandbox-watch.ts";
import { BayError } from "../../errors.ts";
import {
  CreateWatcherResponseSchema,
  type Filesystem,
  GetWatcherEventsResponseSchema,
  ListDirResponseSchema,
  MakeDirResponseSchema,
  MoveResponseSchema,
  RemoveResponseSchema,
  RemoveWatcherResponseSchema,
  StatResponseSchema,
  EventType,
  WatchDirResponseSchema,
} from "../generated/envd/filesystem/filesystem_pb.ts";
import { toWorkspacePath } from "../paths.ts";
import type { FileInfo } from "./file-info.ts";
import type { EnvdCalls } from "./envd-calls.ts";
import { ENVD_KEEPALIVE_MS, KEEPALIVE, streamKeepaliveMs, withKeepalive } from "./keepalive.ts";
import type { PollingWatchers } from "./polling-watchers.ts";
import { readEvents } from "./sse-events.ts";
import { changesLost } from "./watch-events.ts";

export interface FilesystemServiceDeps {
  calls: EnvdCalls;
  info: FileInfo;
  files: SandboxFiles;
  watch: SandboxWatch;
  watchers: PollingWatchers;
  /** Longest quiet time before a keepalive event. */
  keepaliveMs?: number;
}

const EVENT_TYPES: Record<string, EventType> = {
  created: EventType.CREATE,
  modified: EventType.WRITE,
  deleted: EventType.REMOVE,
  renamed: EventType.RENAME,
};

/** A changed path as envd names it: relative to the watched directory. */
const relativeTo = (dir: string) => (path: string) => (dir === "." ? path : path.startsWith(`${dir}/`) ? path.slice(dir.length + 1) : path);

export function filesystemService({
  calls,
  info,
  files,
  watch,
  watchers,
  keepaliveMs = ENVD_KEEPALIVE_MS,
}: FilesystemServiceDeps): Partial<ServiceImpl<typeof Filesystem>> {
  return {
    async *watchDir(req, ctx) {
      yield* calls.stream(ctx, async function* (call) {
        const dir = toWorkspacePath(req.path);
        const res = await watch.watch(call, dir, req.recursive);
        if (!res.body) throw new BayError("ship_error", "the sandbox runtime answered no watch stream");
        const stop = new AbortController();
        for await (const e of withKeepalive(readEvents(res.body, undefined, stop.signal), streamKeepaliveMs(ctx, keepaliveMs), () =>
          stop.abort(),
        )) {
          if (e === KEEPALIVE) yield create(WatchDirResponseSchema, { event: { case: "keepalive", value: {} } });
          else if (e.event === "ready") yield create(WatchDirResponseSchema, { event: { case: "start", value: {} } });
          else if (e.event === "change") {
            const c = e.data as { type: string; path: string };
            const type = EVENT_TYPES[c.type];
            if (type === undefined) continue;
            yield create(WatchDirResponseSchema, { event: { case: "filesystem", value: { name: relativeTo(dir)(c.path), type } } });
          } else if (changesLost(e)) {
            // Changes were lost: said, never passed over in silence (a polling watcher stops likewise).
            throw new ConnectError(
              "the sandbox dropped file changes it could not keep up with: the watch stopped; watch again",
              Code.DataLoss,
            );
          } else if (e.event === "error") {
            const err = (e.data as { error?: { message?: string; code?: unknown } }).error;
            throw new ConnectError(err?.message ?? "the watch ended", streamEndCode(err?.code));
          }
        }
      });
    },

    createWatcher: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        const dir = toWorkspacePath(req.path);
        return create(CreateWatcherResponseSchema, { watcherId: await watchers.create(call, dir, req.recursive, relativeTo(dir)) });
      }),

    getWatcherEvents: (req, ctx) =>
      calls.unary(ctx, async (call) =>
        create(GetWatcherEventsResponseSchema, {
          events: watchers.take(call, req.watcherId).flatMap((e) => {
            const type = EVENT_TYPES[e.type];
            return type === undefined ? [] : [{ name: e.name, type }];
          }),
        }),
      ),

    removeWatcher: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        watchers.remove(call, req.watcherId);
        return create(RemoveWatcherResponseSchema, {});
      }),

    stat: (req, ctx: HandlerContext) =>
      calls.unary(ctx, async (call) => create(StatResponseSchema, { entry: await info.stat(call, toWorkspacePath(req.path)) })),

    listDir: (req, ctx) =>
      calls.unary(ctx, async (call) =>
        create(ListDirResponseSchema, { entries: await info.list(call, toWorkspacePath(req.path), req.depth || 1) }),
      ),

    makeDir: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        try {
          return create(MakeDirResponseSchema, { entry: await info.makeDir(call, toWorkspacePath(req.path)) });
        } catch (e) {
          // The SDK reads AlreadyExists as "it was there" (makeDir answers false).
          if (e instanceof BayError && e.code === "conflict") throw new ConnectError(e.message, Code.AlreadyExists);
          throw e;
        }
      }),

    move: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        // As given: toWorkspacePath normalises `t/file/..` to `t` (mv refuses such a source too).
        refuseDotSegmentEnd(req.source);
        return create(MoveResponseSchema, { entry: await info.move(call, toWorkspacePath(req.source), toWorkspacePath(req.destination)) });
      }),

    remove: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        // As given: toWorkspacePath normalises `t/file/..` to `t`, which the delete would then remove.
        refuseDotSegmentEnd(req.path);
        const path = toWorkspacePath(req.path);
        if (path === ".")
          throw new BayError("invalid_path", "the home directory itself cannot be removed", { details: { path: req.path } });
        await (await files.delete(call, path)).body?.cancel();
        return create(RemoveResponseSchema, {});
      }),
  };
}
