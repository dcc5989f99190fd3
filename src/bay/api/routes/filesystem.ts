/** Filesystem capability of a sandbox, proxied to its Ship; paths checked in Bay first. */
import { Hono } from "hono";
import { normalizeWorkspacePath } from "../../domain/paths.ts";
import { FILE_DEADLINE_MS } from "../../domain/sandbox-files.ts";
import { BayError } from "../../errors.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { relay, withPath } from "../relay.ts";
import { parseUpload } from "../upload-relay.ts";

export function filesystemRoutes(deps: AppDeps): Hono {
  const { router, sandboxFiles } = deps;
  const app = new Hono();

  const simple = [
    [ops.readFile, "GET", "read", "/filesystem/files"],
    [ops.deleteFile, "DELETE", "delete", "/filesystem/files"],
    [ops.listDirectory, "GET", "list", "/filesystem/directories"],
    [ops.downloadFile, "GET", "download", "/filesystem/download"],
  ] as const;
  for (const [op, method, operation, shipPath] of simple) {
    app.on(method, op.honoPath, validate("param", op.params), validate("query", op.query), async (c) => {
      const path = normalizeWorkspacePath(c.req.valid("query").path);
      const res = await router.call({
        owner: c.get("owner"),
        sandboxId: c.req.valid("param").id,
        capability: "filesystem",
        operation,
        method,
        shipPath: withPath(shipPath, path),
        timeoutMs: FILE_DEADLINE_MS,
        requestId: c.get("requestId"),
      });
      return relay(c, res);
    });
  }

  app.put(ops.writeFile.honoPath, validate("param", ops.writeFile.params), validate("json", ops.writeFile.body), async (c) => {
    const body = c.req.valid("json");
    return relay(c, await sandboxFiles.write(c.get("owner"), c.req.valid("param").id, body.path, body.content, c.get("requestId")));
  });

  app.post(ops.uploadFile.honoPath, validate("param", ops.uploadFile.params), validate("query", ops.uploadFile.query), async (c) => {
    const owner = c.get("owner");
    const sandboxId = c.req.valid("param").id;
    const slot = await sandboxFiles.uploadSlot(owner, sandboxId);
    const upload = await parseUpload(c.req.raw, slot.maxBytes, c.req.valid("query").path, normalizeWorkspacePath).catch((e: unknown) => {
      throw e instanceof BayError && e.code === "payload_too_large" ? slot.tooLarge() : e;
    });
    return relay(c, await sandboxFiles.upload(owner, sandboxId, slot, upload, c.get("requestId")));
  });
  return app;
}
