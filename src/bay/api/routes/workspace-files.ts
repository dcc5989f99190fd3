/**
 * The workspace data plane: the same file shapes as the sandbox file routes, on
 * a workspace id, served straight from the volume (no Ship, no user code).
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { normalizeFilePath } from "../../domain/paths.ts";
import type { WorkspaceEntry } from "../../domain/workspace-files.ts";
import type { AppDeps } from "../deps.ts";
import { type FileEntry, operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { receiveToSpool } from "../multipart-upload.ts";
import { isRawUpload, receiveRawToSpool } from "../raw-upload.ts";

const toFileEntry = (e: WorkspaceEntry): FileEntry => ({
  name: e.name,
  path: e.path,
  is_file: e.kind === "file",
  is_dir: e.kind === "directory",
  size: e.size,
  modified_time: new Date(e.modifiedAt).toISOString(),
});

/** A download answer: the bytes, their length and an attachment name safe in a header. */
function attachment(c: Context, file: { body: ReadableStream<Uint8Array>; name: string; size: number }): Response {
  const ascii = file.name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return c.body(file.body, 200, {
    "Content-Type": "application/octet-stream",
    "Content-Disposition": `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(file.name)}`,
    "Content-Length": String(file.size),
  });
}

export function workspaceFileRoutes(deps: AppDeps): Hono {
  const files = deps.workspaceFiles;
  const app = new Hono();

  app.get(
    ops.readWorkspaceFile.honoPath,
    validate("param", ops.readWorkspaceFile.params),
    validate("query", ops.readWorkspaceFile.query),
    async (c) => c.json(await files.read(c.get("owner"), c.req.valid("param").id, c.req.valid("query").path), 200),
  );

  app.put(
    ops.writeWorkspaceFile.honoPath,
    validate("param", ops.writeWorkspaceFile.params),
    validate("json", ops.writeWorkspaceFile.body),
    async (c) =>
      c.json(await files.write(c.get("owner"), c.req.valid("param").id, c.req.valid("json").path, c.req.valid("json").content), 200),
  );

  app.delete(
    ops.deleteWorkspaceFile.honoPath,
    validate("param", ops.deleteWorkspaceFile.params),
    validate("query", ops.deleteWorkspaceFile.query),
    async (c) => c.json(await files.delete(c.get("owner"), c.req.valid("param").id, c.req.valid("query").path), 200),
  );

  app.get(
    ops.listWorkspaceDirectory.honoPath,
    validate("param", ops.listWorkspaceDirectory.params),
    validate("query", ops.listWorkspaceDirectory.query),
    async (c) => {
      const listing = await files.list(c.get("owner"), c.req.valid("param").id, c.req.valid("query").path);
      return c.json({ ...listing, entries: listing.entries.map(toFileEntry) }, 200);
    },
  );

  const uploadOp = ops.uploadWorkspaceFile;
  app.post(uploadOp.honoPath, validate("param", uploadOp.params), validate("query", uploadOp.query), async (c) =>
    c.json(
      // 404 and the size limits are settled before the body is read.
      await files.upload(c.get("owner"), c.req.valid("param").id, (slot) =>
        (isRawUpload(c.req.raw) ? receiveRawToSpool : receiveToSpool)(c.req.raw, {
          maxBytes: slot.maxBytes,
          queryPath: c.req.valid("query").path,
          normalizePath: normalizeFilePath,
          tooLarge: slot.tooLarge,
          spool: deps.uploadSpool.forOwner(c.get("owner")),
        }),
      ),
      200,
    ),
  );

  app.get(
    ops.downloadWorkspaceFile.honoPath,
    validate("param", ops.downloadWorkspaceFile.params),
    validate("query", ops.downloadWorkspaceFile.query),
    async (c) => attachment(c, await files.download(c.get("owner"), c.req.valid("param").id, c.req.valid("query").path)),
  );
  return app;
}
