/** Filesystem capability of a sandbox, proxied to its Ship; paths checked in Bay first. */
import { Hono } from "hono";
import { normalizeWorkspacePath } from "../../domain/paths.ts";
import { quotaError } from "../../domain/workspace-usage.ts";
import { BayError } from "../../errors.ts";
import type { AppDeps } from "../deps.ts";
import { operations as ops } from "../generated/index.ts";
import { validate } from "../middleware/validate.ts";
import { FILE_DEADLINE_MS, JSON_HEADERS, relay, withPath } from "../relay.ts";
import { parseUpload, tooLargeError } from "../upload-relay.ts";

export function filesystemRoutes(deps: AppDeps): Hono {
  const { router, config, workspaceFiles } = deps;
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
    const path = normalizeWorkspacePath(body.path);
    const size = Buffer.byteLength(body.content, "utf8");
    if (size > config.limits.max_file_bytes) {
      throw new BayError("payload_too_large", `file content exceeds the limit of ${config.limits.max_file_bytes} bytes; use upload for large files`, {
        details: { limit_bytes: config.limits.max_file_bytes, size },
      });
    }
    // The workspace's size_limit_mb, checked after the cheap refusals and before any container starts.
    const owner = c.get("owner");
    const sandboxId = c.req.valid("param").id;
    await router.preflight(owner, sandboxId, "filesystem");
    const quota = await workspaceFiles.sandboxRoom(owner, sandboxId);
    if (quota && size > quota.room.remainingBytes) throw quotaError(quota.ws, quota.room, size);
    const res = await router.call({
      owner,
      sandboxId,
      capability: "filesystem",
      operation: "write",
      method: "PUT",
      shipPath: "/filesystem/files",
      headers: JSON_HEADERS(),
      body: JSON.stringify({ path, content: body.content }),
      timeoutMs: FILE_DEADLINE_MS,
      requestId: c.get("requestId"),
    });
    if (quota && res.ok) workspaceFiles.usage.added(quota.ws.id, size);
    return relay(c, res);
  });

  app.post(ops.uploadFile.honoPath, validate("param", ops.uploadFile.params), validate("query", ops.uploadFile.query), async (c) => {
    const owner = c.get("owner");
    const sandboxId = c.req.valid("param").id;
    const max = config.limits.max_upload_bytes;
    // Refuse what can be refused before reading the body or starting a container.
    await router.preflight(owner, sandboxId, "filesystem");
    // The file may use the room left in the workspace (size_limit_mb), up to the upload limit.
    const quota = await workspaceFiles.sandboxRoom(owner, sandboxId);
    const slot = quota?.slot ?? { maxBytes: max, tooLarge: () => tooLargeError(max) };
    const upload = await parseUpload(c.req.raw, slot.maxBytes, c.req.valid("query").path, normalizeWorkspacePath).catch((e: unknown) => {
      throw e instanceof BayError && e.code === "payload_too_large" ? slot.tooLarge() : e;
    });
    const path = upload.path;
    try {
      const res = await router.call({
        owner,
        sandboxId,
        capability: "filesystem",
        operation: "upload",
        method: "POST",
        shipPath: withPath("/filesystem/upload", path),
        headers: new Headers({ "content-type": upload.contentType }),
        body: upload.body,
        timeoutMs: FILE_DEADLINE_MS,
        requestId: c.get("requestId"),
      });
      if (quota) workspaceFiles.usage.forget(quota.ws.id); // size unknown here: measure afresh next time
      return relay(c, res);
    } catch (e) {
      await upload.release();
      if (upload.tooLarge()) throw slot.tooLarge();
      throw e;
    }
  });
  return app;
}
