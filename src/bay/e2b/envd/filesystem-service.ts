/**
 * envd's Filesystem service on Bay: Stat, ListDir, MakeDir, Move and Remove on
 * the sandbox's workspace (`/home/user` is `/workspace`). WatchDir needs Bay's
 * file watch (the interactive work); until then it is unimplemented, and so are
 * the polling watchers.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { SandboxFiles } from "../../domain/sandbox-files.ts";
import { BayError } from "../../errors.ts";
import {
  type Filesystem,
  ListDirResponseSchema,
  MakeDirResponseSchema,
  MoveResponseSchema,
  RemoveResponseSchema,
  StatResponseSchema,
} from "../generated/envd/filesystem/filesystem_pb.ts";
import { toWorkspacePath } from "../paths.ts";
import type { FileInfo } from "./file-info.ts";
import type { EnvdCalls } from "./envd-calls.ts";

export interface FilesystemServiceDeps {
  calls: EnvdCalls;
  info: FileInfo;
  files: SandboxFiles;
}

export function filesystemService({ calls, info, files }: FilesystemServiceDeps): Partial<ServiceImpl<typeof Filesystem>> {
  return {
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
      calls.unary(ctx, async (call) =>
        create(MoveResponseSchema, { entry: await info.move(call, toWorkspacePath(req.source), toWorkspacePath(req.destination)) }),
      ),

    remove: (req, ctx) =>
      calls.unary(ctx, async (call) => {
        const path = toWorkspacePath(req.path);
        if (path === ".")
          throw new BayError("invalid_path", "the home directory itself cannot be removed", { details: { path: req.path } });
        await (await files.delete(call, path)).body?.cancel();
        return create(RemoveResponseSchema, {});
      }),
  };
}
