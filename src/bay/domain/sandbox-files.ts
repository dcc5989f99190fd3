/**
 * Files of a sandbox, through its Ship: reads, writes, listings, deletes and
 * transfers. The rules that are Bay's, not the Ship's, live here: paths are
 * checked before any container starts, the text-write limit, and the
 * workspace's size_limit_mb on writes and uploads (known before the body is
 * read), with usage accounted afterwards. Bytes pass through unchanged.
 */
import { namesDirectory } from "../../protocol/ship/constants.ts";
import { BayError } from "../errors.ts";
import { DEADLINES } from "../runtime/ship-client.ts";
import type { CallContext, CapabilityRouter } from "./capability-router.ts";
import { normalizeFilePath, normalizeRemovablePath, normalizeWorkspacePath, onSentPath } from "./paths.ts";
import type { UploadLimits, WorkspaceFiles } from "./workspace-files.ts";
import { quotaError } from "./workspace-usage.ts";

export const tooLargeError = (maxBytes: number) =>
  new BayError("payload_too_large", `upload exceeds the limit of ${maxBytes} bytes`, { details: { limit_bytes: maxBytes } });

/** An upload whose path is known and whose bytes are still streaming. */
export interface StreamingUpload {
  path: string;
  /** The path as the client sent it, for an error about it (onSentPath); default `path`. */
  sentPath?: string;
  body: ReadableStream<Uint8Array>;
  /** The body's length when the client declared it (a raw upload with Content-Length): sent on to Ship as such. */
  length?: number;
  /** The client's own failure (a malformed or truncated body, a file too large), if the stream broke on it. */
  failure(): BayError | null;
  /** Frees anything spooled for it. */
  release(): Promise<void>;
}

export interface SandboxUploadLimits extends UploadLimits {
  /** The workspace whose usage the upload changes, when a size limit applies. */
  workspaceId: string | null;
}

export interface SandboxFilesDeps {
  router: CapabilityRouter;
  workspaceFiles: WorkspaceFiles;
  maxFileBytes: number;
  maxUploadBytes: number;
}

/** Path-based calls share one shape. */
type PathCall = "readFile" | "deletePath" | "listDirectory" | "downloadFile";

export class SandboxFiles {
  constructor(private readonly deps: SandboxFilesDeps) {}

  read(ctx: CallContext, rawPath: string): Promise<Response> {
    return this.pathCall(ctx, "read_file", "readFile", rawPath);
  }

  /**
   * A path ending in `.` or `..` is refused (normalizeRemovablePath). One ending in `/` must name
   * a directory: Ship is handed the trailing slash and checks the entry (namesDirectory).
   */
  delete(ctx: CallContext, rawPath: string): Promise<Response> {
    return onSentPath(rawPath, () => {
      const rel = normalizeRemovablePath(rawPath);
      return this.shipPathCall(ctx, "delete", "deletePath", namesDirectory(rawPath) ? `${rel}/` : rel);
    });
  }

  list(ctx: CallContext, rawPath: string): Promise<Response> {
    return this.pathCall(ctx, "list_dir", "listDirectory", rawPath);
  }

  download(ctx: CallContext, rawPath: string): Promise<Response> {
    return this.pathCall(ctx, "download", "downloadFile", rawPath);
  }

  /** Writes a text file in the sandbox; returns the Ship's response, unread. */
  write(ctx: CallContext, rawPath: string, content: string): Promise<Response> {
    return onSentPath(rawPath, () => this.writeText(ctx, rawPath, content));
  }

  private async writeText(ctx: CallContext, rawPath: string, content: string): Promise<Response> {
    const { router, workspaceFiles, maxFileBytes } = this.deps;
    const path = normalizeFilePath(rawPath);
    const size = Buffer.byteLength(content, "utf8");
    if (size > maxFileBytes) {
      throw new BayError("payload_too_large", `file content exceeds the limit of ${maxFileBytes} bytes; use upload for large files`, {
        details: { limit_bytes: maxFileBytes, size },
      });
    }
    await router.preflight(ctx.owner, ctx.sandboxId, "filesystem");
    const quota = await workspaceFiles.sandboxHeadroom(ctx.owner, ctx.sandboxId);
    if (quota && size > quota.headroom.remainingBytes) throw quotaError(quota.ws, quota.headroom, size);
    const res = await router.call(ctx, {
      capability: "filesystem",
      operation: "write_file",
      coverMs: DEADLINES.files,
      replayable: true,
      run: (ship, s) => ship.writeFile(s, path, content, ctx),
    });
    if (quota) workspaceFiles.usage.added(quota.ws.id, size);
    return res;
  }

  /** How large an upload may be: checked before the body is read or a container starts. */
  async uploadLimits(owner: string, sandboxId: string): Promise<SandboxUploadLimits> {
    const { router, workspaceFiles, maxUploadBytes } = this.deps;
    await router.preflight(owner, sandboxId, "filesystem");
    const quota = await workspaceFiles.sandboxHeadroom(owner, sandboxId);
    if (quota) return { ...quota.limits, workspaceId: quota.ws.id };
    return { maxBytes: maxUploadBytes, tooLarge: () => tooLargeError(maxUploadBytes), workspaceId: null };
  }

  /** Streams an upload into the sandbox; answers the Ship's small JSON result. */
  upload(ctx: CallContext, limits: SandboxUploadLimits, upload: StreamingUpload): Promise<Response> {
    return onSentPath(upload.sentPath ?? upload.path, () => this.streamUpload(ctx, limits, upload));
  }

  private async streamUpload(ctx: CallContext, limits: SandboxUploadLimits, upload: StreamingUpload): Promise<Response> {
    const { router, workspaceFiles } = this.deps;
    try {
      const res = await router.call(ctx, {
        capability: "filesystem",
        operation: "upload",
        coverMs: DEADLINES.files,
        replayable: false,
        run: (ship, s) => ship.uploadFile(s, upload.path, upload.body, ctx, upload.length),
      });
      if (!limits.workspaceId) return res;
      // The Ship's answer states the size: account it rather than measuring the
      // whole workspace again (a `du` in a helper container).
      const result = await res.json();
      // A size that is no count of bytes (a Ship that lies) is measured again instead.
      if (Number.isSafeInteger(result.size) && result.size >= 0) workspaceFiles.usage.added(limits.workspaceId, result.size);
      else workspaceFiles.usage.forget(limits.workspaceId);
      return Response.json(result, { status: res.status });
    } catch (e) {
      // The client's own broken body is the answer, not what the Ship made of it.
      throw upload.failure() ?? e;
    } finally {
      await upload.release();
    }
  }

  /**
   * The first of `paths` (normalised workspace paths) an upload would be refused for on
   * the sandbox's disk as it is, with its index, or null; nothing is written. Best
   * effort: an answer that names no target (a Ship from before the check, one that
   * took past DEADLINES.uploadCheck) refuses none, and each write checks again.
   */
  async firstRefusedUpload(ctx: CallContext, paths: string[]): Promise<{ index: number; refusal: BayError } | null> {
    try {
      const res = await this.deps.router.call(ctx, {
        capability: "filesystem",
        operation: "upload-check",
        coverMs: DEADLINES.uploadCheck,
        replayable: true,
        run: (ship, s) => ship.checkUploads(s, paths, ctx),
      });
      await res.body?.cancel();
      return null;
    } catch (e) {
      if (!(e instanceof BayError)) throw e;
      const { index, ...details } = e.details;
      if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= paths.length) return null;
      return { index, refusal: new BayError(e.code, e.message, { details }) };
    }
  }

  private pathCall(ctx: CallContext, operation: string, call: PathCall, rawPath: string): Promise<Response> {
    return onSentPath(rawPath, () => this.shipPathCall(ctx, operation, call, normalizeWorkspacePath(rawPath)));
  }

  /** `path` as Ship takes it: normalised, plus a trailing slash when it must name a directory. */
  private shipPathCall(ctx: CallContext, operation: string, call: PathCall, path: string): Promise<Response> {
    return this.deps.router.call(ctx, {
      capability: "filesystem",
      operation,
      coverMs: DEADLINES.files,
      replayable: true,
      run: (ship, s) => ship[call](s, path, ctx),
    });
  }
}
