/**
 * The sandbox file rules that are Bay's, not the Ship's: the text-write limit,
 * the workspace's size_limit_mb on writes and uploads (checked before any
 * container starts), and usage accounting afterwards. The bytes themselves go
 * through the CapabilityRouter unchanged.
 */
import { BayError } from "../errors.ts";
import type { CapabilityRouter } from "./capability-router.ts";
import { normalizeWorkspacePath } from "./paths.ts";
import type { UploadSlot, WorkspaceFiles } from "./workspace-files.ts";
import { quotaError } from "./workspace-usage.ts";

/** Deadline for file calls to the Ship (streamed bodies can be large). */
export const FILE_DEADLINE_MS = 10 * 60_000;

export const tooLargeError = (maxBytes: number) =>
  new BayError("payload_too_large", `upload exceeds the limit of ${maxBytes} bytes`, { details: { limit_bytes: maxBytes } });

/** An upload already parsed far enough to know its path, its bytes still streaming. */
export interface StreamingUpload {
  path: string;
  body: ReadableStream<Uint8Array>;
  contentType: string;
  /** True when the file crossed the slot's limit mid-stream. */
  tooLarge(): boolean;
  /** The client's own failure (a malformed or truncated body), if the stream broke on it. */
  failure(): BayError | null;
  /** Frees anything spooled for it. */
  release(): Promise<void>;
}

export interface SandboxUploadSlot extends UploadSlot {
  /** The workspace whose usage the upload changes, when a size limit applies. */
  workspaceId: string | null;
}

export interface SandboxFilesDeps {
  router: CapabilityRouter;
  workspaceFiles: WorkspaceFiles;
  maxFileBytes: number;
  maxUploadBytes: number;
}

export class SandboxFiles {
  constructor(private readonly deps: SandboxFilesDeps) {}

  /** Writes a text file in the sandbox; returns the Ship's response, unread. */
  async write(owner: string, sandboxId: string, rawPath: string, content: string, requestId: string): Promise<Response> {
    const { router, workspaceFiles, maxFileBytes } = this.deps;
    const path = normalizeWorkspacePath(rawPath);
    const size = Buffer.byteLength(content, "utf8");
    if (size > maxFileBytes) {
      throw new BayError("payload_too_large", `file content exceeds the limit of ${maxFileBytes} bytes; use upload for large files`, {
        details: { limit_bytes: maxFileBytes, size },
      });
    }
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
      headers: new Headers({ "content-type": "application/json" }),
      body: JSON.stringify({ path, content }),
      timeoutMs: FILE_DEADLINE_MS,
      requestId,
    });
    if (quota && res.ok) workspaceFiles.usage.added(quota.ws.id, size);
    return res;
  }

  /** How large an upload may be: checked before the body is read or a container starts. */
  async uploadSlot(owner: string, sandboxId: string): Promise<SandboxUploadSlot> {
    const { router, workspaceFiles, maxUploadBytes } = this.deps;
    await router.preflight(owner, sandboxId, "filesystem");
    const quota = await workspaceFiles.sandboxRoom(owner, sandboxId);
    if (quota) return { ...quota.slot, workspaceId: quota.ws.id };
    return { maxBytes: maxUploadBytes, tooLarge: () => tooLargeError(maxUploadBytes), workspaceId: null };
  }

  /** Streams an upload into the sandbox; returns the Ship's response, unread. */
  async upload(owner: string, sandboxId: string, slot: SandboxUploadSlot, upload: StreamingUpload, requestId: string): Promise<Response> {
    const { router, workspaceFiles } = this.deps;
    try {
      const res = await router.call({
        owner,
        sandboxId,
        capability: "filesystem",
        operation: "upload",
        method: "POST",
        shipPath: `/filesystem/upload?path=${encodeURIComponent(upload.path)}`,
        headers: new Headers({ "content-type": upload.contentType }),
        body: upload.body,
        timeoutMs: FILE_DEADLINE_MS,
        requestId,
      });
      if (!slot.workspaceId) return res;
      // The Ship's small JSON answer states the size: account it rather than
      // measuring the whole workspace again (a `du` in a helper container).
      const text = await res.text();
      const size = uploadedSize(text);
      if (size === null) workspaceFiles.usage.forget(slot.workspaceId);
      else workspaceFiles.usage.added(slot.workspaceId, size);
      return new Response(text, { status: res.status, headers: res.headers });
    } catch (e) {
      await upload.release();
      if (upload.tooLarge()) throw slot.tooLarge();
      throw upload.failure() ?? e;
    }
  }
}

/** The `size` of a Ship upload answer, or null when it states none. */
function uploadedSize(text: string): number | null {
  try {
    const size = (JSON.parse(text) as { size?: unknown }).size;
    return typeof size === "number" && Number.isFinite(size) ? size : null;
  } catch {
    return null;
  }
}
