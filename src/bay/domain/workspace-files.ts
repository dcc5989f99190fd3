/**
 * The workspace data plane's rules: read, write, list, delete, upload and
 * download files of a workspace without starting a Ship and without running user
 * code. What is Bay's lives here: whose workspace it is, the path rule, the text
 * and upload limits and the workspace's size limit. How bytes reach a volume is the
 * driver's `VolumeFiles` capability (on Docker, a helper container per call).
 */
import type { Readable } from "node:stream";
import type { FileKind, VolumeFiles, VolumeRef } from "../drivers/driver.ts";
import { BayError, notFound } from "../errors.ts";
import type { Stores } from "../store/index.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import { normalizeFilePath, normalizeRemovablePath, normalizeWorkspacePath, onSentPath } from "./paths.ts";
import { quotaError, WorkspaceUsage, type QuotaHeadroom } from "./workspace-usage.ts";
import { namesDirectory } from "../../protocol/ship/constants.ts";
import { notText, utf8Text } from "../../protocol/text-file.ts";

/** Entries a listing returns at most (as Ship's listing does). */
export const MAX_LIST_ENTRIES = 10_000;

export interface WorkspaceFilesDeps {
  stores: Stores;
  files: VolumeFiles;
  /** Labels a volume gets should the data plane be the first to touch it. */
  instanceId: string;
  limits: { maxFileBytes: number; maxUploadBytes: number; listingTimeoutMs: number };
  usageTtlMs?: number;
  now?: () => number;
}

/** A file received on Bay's disk, ready to be put into a workspace. */
export interface ReceivedFile {
  path: string;
  /** The path as the client sent it, for an error about it (onSentPath); default `path`. */
  sentPath?: string;
  size: number;
  /** The file's bytes, as a stream that `release` closes, read or not. */
  read(): Readable;
  /** Frees the file on Bay's disk (closing its readers); safe to call twice. */
  release(): Promise<void>;
}

/** Limits for one upload, known before its body is read. */
export interface UploadLimits {
  /** Largest file this upload may carry. */
  maxBytes: number;
  /** The 413 to answer when the file turns out larger than `maxBytes`; `size` when it is known (a raw upload's Content-Length). */
  tooLarge(size?: number): BayError;
}

/** One entry of a directory listing. */
export interface WorkspaceEntry {
  name: string;
  /** Relative to /workspace. */
  path: string;
  kind: FileKind;
  /** Bytes of a file (0 for a directory). */
  size: number;
  modifiedAt: number;
}

export class WorkspaceFiles {
  readonly usage: WorkspaceUsage;
  private readonly now: () => number;

  constructor(private readonly deps: WorkspaceFilesDeps) {
    this.now = deps.now ?? Date.now;
    this.usage = new WorkspaceUsage({ measure: (ws) => deps.files.usage(this.volumeOf(ws)), ttlMs: deps.usageTtlMs, now: this.now });
  }

  /** A UTF-8 text file; binary files and files over max_file_bytes are refused with a hint to use download. */
  read(owner: string, id: string, rawPath: string): Promise<{ path: string; content: string }> {
    return onSentPath(rawPath, async () => {
      const rel = normalizeWorkspacePath(rawPath);
      const ws = await this.open(owner, id);
      const max = this.deps.limits.maxFileBytes;
      const { stat, body } = await this.deps.files.read(this.volumeOf(ws), rel);
      if (stat.size > max) {
        await body.cancel();
        throw new BayError("payload_too_large", `file is larger than ${max} bytes; use download`, {
          details: { path: rel, size: stat.size, limit_bytes: max },
        });
      }
      return { path: rel, content: decodeText(await readAll(body), rel, id) };
    });
  }

  /** Writes a UTF-8 text file (0644, uid 1000), creating missing parents (0755). */
  write(owner: string, id: string, rawPath: string, content: string): Promise<{ status: "ok"; path: string; size: number }> {
    return onSentPath(rawPath, () => this.writeText(owner, id, rawPath, content));
  }

  private async writeText(owner: string, id: string, rawPath: string, content: string) {
    const rel = normalizeFilePath(rawPath);
    const bytes = Buffer.from(content, "utf8");
    const max = this.deps.limits.maxFileBytes;
    if (bytes.byteLength > max) {
      throw new BayError("payload_too_large", `file content exceeds the limit of ${max} bytes; use upload for large files`, {
        details: { limit_bytes: max, size: bytes.byteLength },
      });
    }
    const ws = await this.open(owner, id);
    await this.usage.charged(ws, bytes.byteLength, () => this.deps.files.write(this.volumeOf(ws), rel, { size: bytes.byteLength, bytes }));
    return { status: "ok" as const, path: rel, size: bytes.byteLength };
  }

  /**
   * Deletes a file, or a directory recursively; a symlink itself, never its target. The root is refused.
   * A path ending in `/` (namesDirectory) must name a directory, as `rm -r file/` refuses a file;
   * one ending in `.` or `..` is refused before anything is deleted (normalizeRemovablePath), as rm refuses it.
   */
  delete(owner: string, id: string, rawPath: string): Promise<{ status: "ok" }> {
    return onSentPath(rawPath, async () => {
      const rel = normalizeRemovablePath(rawPath);
      const ws = await this.open(owner, id);
      try {
        await this.deps.files.remove(this.volumeOf(ws), rel, { directory: namesDirectory(rawPath) });
      } finally {
        // Even a failed delete may have removed part of a tree.
        this.usage.forget(ws.id);
      }
      return { status: "ok" as const };
    });
  }

  /** The immediate children of a directory, sorted by name; at most MAX_LIST_ENTRIES (then `truncated`). */
  list(owner: string, id: string, rawPath: string): Promise<{ path: string; entries: WorkspaceEntry[]; truncated: boolean }> {
    return onSentPath(rawPath, () => this.listDirectory(owner, id, rawPath));
  }

  private async listDirectory(owner: string, id: string, rawPath: string) {
    const rel = normalizeWorkspacePath(rawPath);
    const ws = await this.open(owner, id);
    const { entries, truncated } = await this.deps.files.list(this.volumeOf(ws), rel, {
      maxEntries: MAX_LIST_ENTRIES,
      timeoutMs: this.deps.limits.listingTimeoutMs,
    });
    return {
      path: rel,
      entries: entries.map((e) => ({
        name: e.name,
        path: rel === "." ? e.name : `${rel}/${e.name}`,
        kind: e.kind,
        size: e.size,
        modifiedAt: e.modifiedAt,
      })),
      truncated,
    };
  }

  /**
   * Receives an upload with `receive` (given the limits before a byte of the body is
   * read: 404 and size limits come first), then puts it into the workspace.
   */
  async upload(
    owner: string,
    id: string,
    receive: (limits: UploadLimits) => Promise<ReceivedFile>,
  ): Promise<{ status: "ok"; path: string; size: number }> {
    const received = await receive(await this.uploadLimits(owner, id));
    return onSentPath(received.sentPath ?? received.path, () => this.put(owner, id, received));
  }

  /** Puts a received upload into the workspace, and frees it. */
  private async put(owner: string, id: string, received: ReceivedFile): Promise<{ status: "ok"; path: string; size: number }> {
    try {
      const rel = normalizeFilePath(received.path);
      // Looked up again: the workspace may have been deleted while the body arrived.
      const ws = await this.open(owner, id);
      // The reader is closed by release below whatever happened (a failed write may leave it half read).
      await this.usage.charged(ws, received.size, () =>
        this.deps.files.write(this.volumeOf(ws), rel, { size: received.size, bytes: received.read() }),
      );
      return { status: "ok", path: rel, size: received.size };
    } finally {
      await received.release();
    }
  }

  private async uploadLimits(owner: string, id: string): Promise<UploadLimits> {
    const ws = await this.open(owner, id);
    return this.limitsFor(ws, await this.usage.headroom(ws));
  }

  /** A file's bytes as a stream; the driver lets go of it when the stream ends or is cancelled. */
  download(owner: string, id: string, rawPath: string): Promise<{ body: ReadableStream<Uint8Array>; name: string; size: number }> {
    return onSentPath(rawPath, async () => {
      const rel = normalizeWorkspacePath(rawPath);
      const ws = await this.open(owner, id);
      const { stat, body } = await this.deps.files.read(this.volumeOf(ws), rel);
      return { body, name: rel.split("/").pop() ?? rel, size: stat.size };
    });
  }

  /**
   * Room left in a sandbox's workspace, for the sandbox file routes; null when the
   * sandbox is unknown (the capability router then answers its 404).
   */
  async sandboxHeadroom(
    owner: string,
    sandboxId: string,
  ): Promise<{ ws: WorkspaceRecord; headroom: QuotaHeadroom; limits: UploadLimits } | null> {
    const sb = await this.deps.stores.sandboxes.findLive(owner, sandboxId, this.now());
    const ws = sb ? await this.deps.stores.workspaces.get(sb.workspaceId) : null;
    if (!ws || ws.deletedAt !== null) return null;
    const headroom = await this.usage.headroom(ws);
    return { ws, headroom, limits: this.limitsFor(ws, headroom) };
  }

  private limitsFor(ws: WorkspaceRecord, headroom: QuotaHeadroom): UploadLimits {
    const maxUpload = this.deps.limits.maxUploadBytes;
    if (headroom.remainingBytes < maxUpload) {
      return { maxBytes: headroom.remainingBytes, tooLarge: (size) => quotaError(ws, headroom, size) };
    }
    return {
      maxBytes: maxUpload,
      tooLarge: () =>
        new BayError("payload_too_large", `upload exceeds the limit of ${maxUpload} bytes`, { details: { limit_bytes: maxUpload } }),
    };
  }

  /** A live workspace of this owner (404 otherwise); marks it accessed. */
  private async open(owner: string, id: string): Promise<WorkspaceRecord> {
    const ws = await this.deps.stores.workspaces.findLive(owner, id);
    if (!ws) throw notFound("workspace", id);
    await this.deps.stores.workspaces.touch(ws.id, this.now());
    return ws;
  }

  /** The workspace's volume, with the labels a session would give it (only a managed one names its sandbox). */
  private volumeOf(ws: WorkspaceRecord): VolumeRef {
    return {
      name: ws.volumeName,
      labels: {
        owner: ws.owner,
        workspace_id: ws.id,
        instance_id: this.deps.instanceId,
        workspace_kind: ws.managed ? "managed" : "external",
        sandbox_id: ws.managed ? (ws.sandboxId ?? undefined) : undefined,
      },
    };
  }
}

/** Every byte of a small body (the caller has checked its size). */
async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function decodeText(bytes: Uint8Array, rel: string, id: string): string {
  const text = utf8Text(bytes);
  if (text !== null) return text;
  const download = `GET /v1/workspaces/${id}/filesystem/download?path=${encodeURIComponent(rel)}`;
  const { message, details } = notText(rel, download);
  throw new BayError("validation_error", message, { details });
}
