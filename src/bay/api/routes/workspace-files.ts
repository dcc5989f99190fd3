/**
 * The workspace data plane: the same file shapes as the sandbox file routes, on
 * a workspace id, served straight from the volume (no Ship, no user code).
 */
import { Hono } from "hono";
import { normalizeWorkspacePath } from "../../domain/paths.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { receiveToSpool } from "../multipart-upload.ts";

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
    async (c) => {
      const { path, content } = c.req.valid("json");
      return c.json(await files.write(c.get("owner"), c.req.valid("param").id, path, content), 200);
    },
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
    async (c) => c.json(await files.list(c.get("owner"), c.req.valid("param").id, c.req.valid("query").path), 200),
  );

  const uploadOp = ops.uploadWorkspaceFile;
  app.post(uploadOp.honoPath, validate("param", uploadOp.params), validate("query", uploadOp.query), async (c) => {
    const owner = c.get("owner");
    const id = c.req.valid("param").id;
    // 404 and the size limits are settled before the body is read.
    const slot = await files.uploadSlot(owner, id);
    const upload = await receiveToSpool(c.req.raw, {
      maxBytes: slot.maxBytes,
      queryPath: c.req.valid("query").path,
      normalizePath: normalizeWorkspacePath,
      tooLarge: slot.tooLarge,
      spool: deps.uploadSpool,
    });
    try {
      return c.json(await files.commitUpload(owner, id, upload), 200);
    } finally {
      await upload.release();
    }
  });

  app.get(
    ops.downloadWorkspaceFile.honoPath,
    validate("param", ops.downloadWorkspaceFile.params),
    validate("query", ops.downloadWorkspaceFile.query),
    async (c) => {
      const file = await files.download(c.get("owner"), c.req.valid("param").id, c.req.valid("query").path);
      const ascii = file.name.replace(/[^\x20-\x7e]|["\\]/g, "_");
      return c.body(file.body, 200, {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(file.name)}`,
        "Content-Length": String(file.size),
      });
    },
  );
  return app;
}
