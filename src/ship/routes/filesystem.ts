import { Hono } from "hono";
import { shipOperations as ops } from "../../protocol/ship/index.ts";
import { deletePath, listDirectory, readTextFile, writeTextFile } from "../filesystem/files.ts";
import { ShipError } from "../errors.ts";
import { checkUploadTarget, downloadResponse, receiveUpload } from "../filesystem/transfer.ts";
import { validate } from "../validation.ts";

/** The /filesystem/* routes. */
export function filesystemRoutes(deps: { workspace: string; maxBodyBytes: number; maxUploadBytes: number; uploadIdleSeconds: number }) {
  const ws = deps.workspace;
  return new Hono()
    .get(ops.readFile.honoPath, validate("query", ops.readFile.query), async (c) =>
      c.json(await readTextFile(ws, c.req.valid("query").path, deps.maxBodyBytes)),
    )
    .put(ops.writeFile.honoPath, validate("json", ops.writeFile.body), async (c) => {
      const { path, content } = c.req.valid("json");
      return c.json(await writeTextFile(ws, path, content));
    })
    .delete(ops.deletePath.honoPath, validate("query", ops.deletePath.query), async (c) =>
      c.json(await deletePath(ws, c.req.valid("query").path)),
    )
    .get(ops.listDirectory.honoPath, validate("query", ops.listDirectory.query), async (c) =>
      c.json(await listDirectory(ws, c.req.valid("query").path)),
    )
    .post(ops.uploadFile.honoPath, validate("query", ops.uploadFile.query), async (c) =>
      c.json(await receiveUpload(ws, c.req.raw, c.req.valid("query").path, deps.maxUploadBytes, { idleMs: deps.uploadIdleSeconds * 1000 })),
    )
    .post(ops.checkUploads.honoPath, validate("json", ops.checkUploads.body), async (c) => {
      const { paths } = c.req.valid("json");
      for (const [index, path] of paths.entries()) {
        try {
          await checkUploadTarget(ws, path);
        } catch (err) {
          if (err instanceof ShipError) throw new ShipError(err.code, err.message, { details: { ...err.details, index } });
          throw err;
        }
      }
      return c.json({ status: "ok" as const });
    })
    .get(ops.downloadFile.honoPath, validate("query", ops.downloadFile.query), async (c) =>
      downloadResponse(ws, c.req.valid("query").path),
    );
}
