/** Filesystem capability of a sandbox: one domain call each (paths are checked in the domain, before any container starts). */
import { Hono } from "hono";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { receiveStreaming } from "../multipart-upload.ts";
import { isRawUpload, receiveRaw } from "../raw-upload.ts";
import { normalizeFilePath } from "../../domain/paths.ts";
import { callContext, relay, sentBodyContext } from "../relay.ts";

export function filesystemRoutes(deps: AppDeps): Hono {
  const { sandboxFiles, uploadSpool } = deps;
  const app = new Hono();

  app.get(ops.readFile.honoPath, validate("param", ops.readFile.params), validate("query", ops.readFile.query), async (c) =>
    relay(c, await sandboxFiles.read(callContext(c, c.req.valid("param").id), c.req.valid("query").path)),
  );

  app.delete(ops.deleteFile.honoPath, validate("param", ops.deleteFile.params), validate("query", ops.deleteFile.query), async (c) =>
    relay(c, await sandboxFiles.delete(callContext(c, c.req.valid("param").id), c.req.valid("query").path)),
  );

  app.get(ops.listDirectory.honoPath, validate("param", ops.listDirectory.params), validate("query", ops.listDirectory.query), async (c) =>
    relay(c, await sandboxFiles.list(callContext(c, c.req.valid("param").id), c.req.valid("query").path)),
  );

  app.get(ops.downloadFile.honoPath, validate("param", ops.downloadFile.params), validate("query", ops.downloadFile.query), async (c) =>
    relay(c, await sandboxFiles.download(sentBodyContext(c, c.req.valid("param").id), c.req.valid("query").path)),
  );

  app.put(ops.writeFile.honoPath, validate("param", ops.writeFile.params), validate("json", ops.writeFile.body), async (c) => {
    const { path, content } = c.req.valid("json");
    return relay(c, await sandboxFiles.write(callContext(c, c.req.valid("param").id), path, content));
  });

  app.post(ops.uploadFile.honoPath, validate("param", ops.uploadFile.params), validate("query", ops.uploadFile.query), async (c) => {
    const ctx = callContext(c, c.req.valid("param").id);
    // 404, the capability and the size limits are settled before the body is read.
    const limits = await sandboxFiles.uploadLimits(ctx.owner, ctx.sandboxId);
    const receive = {
      maxBytes: limits.maxBytes,
      tooLarge: limits.tooLarge,
      queryPath: c.req.valid("query").path,
      normalizePath: normalizeFilePath,
      spool: uploadSpool.forOwner(ctx.owner),
    };
    // The file itself as the body (application/octet-stream): with its length, passed on without being read here.
    const upload = isRawUpload(c.req.raw) ? receiveRaw(c.req.raw, receive) : await receiveStreaming(c.req.raw, receive);
    return relay(c, await sandboxFiles.upload(ctx, limits, upload));
  });
  return app;
}
