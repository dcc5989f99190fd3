/**
 * The workspace data plane: read, write, list, delete, upload and download
 * files of a workspace volume without starting a Ship and without running user
 * code. Each call mounts the volume in a helper container that is created but
 * never started and is removed when the call ends, and moves bytes through the
 * engine's archive API (so a remote Docker host works the same). Deleting and
 * measuring need a process, so they run `rm`/`du` in a throwaway, network-less
 * container of the helper image.
 *
 * Paths are normalised first (invalid_path), then every component is stat'ed
 * inside the helper: the engine resolves symlinks inside the helper's own root,
 * so a link could point outside /workspace; any symlink on the way is refused.
 */
import { createReadStream } from "node:fs";
import type { FileEntry } from "../api/generated/index.ts";
import { hasArchiveAccess, type ArchiveStat, type Driver, type ResourceLabels, type WorkspaceArchiveAccess } from "../drivers/driver.ts";
import { BayError, notFound } from "../errors.ts";
import { errorMessage, type Logger } from "../logger.ts";
import type { Stores } from "../store/index.ts";
import type { WorkspaceRecord } from "../store/workspace-store.ts";
import { normalizeWorkspacePath } from "./paths.ts";
import { listChildren, readFirstFile, sendOneFileTar, streamFirstFile } from "./workspace-tar.ts";
import { quotaError, WorkspaceUsage, type WorkspaceRoom } from "./workspace-usage.ts";

const ROOT = "/workspace";
const MODE_DIR = 0x80000000;
const MODE_SYMLINK = 0x08000000;
/** Longest a helper command (rm -rf, du) may run. */
const HELPER_COMMAND_MS = 120_000;
/** A download's helper is removed after this even if the client never finishes reading. */
const DOWNLOAD_DEADLINE_MS = 10 * 60_000;

const absolute = (rel: string) => (rel === "." ? ROOT : `${ROOT}/${rel}`);
const isDir = (s: ArchiveStat) => (s.mode & MODE_DIR) !== 0;
const isLink = (s: ArchiveStat) => (s.mode & MODE_SYMLINK) !== 0 || s.linkTarget !== "";

export interface WorkspaceFilesDeps {
  stores: Stores;
  driver: Driver;
  logger: Logger;
  /** Labels helpers so this Bay's reconcile recognises them. */
  instanceId: string;
  /** Image of helper containers; needs `rm` and `du` and a uid 1000. */
  helperImage: string;
  limits: { maxFileBytes: number; maxUploadBytes: number };
  usageTtlMs?: number;
  now?: () => number;
}

/** A file received on Bay's disk, ready to be put into a workspace. */
export interface ReceivedFile {
  path: string;
  file: string;
  size: number;
}

/** Limits for one upload, known before its body is read. */
/** Entries a listing returns at most (as Ship's listing does). */
export const MAX_LIST_ENTRIES = 10_000;

export interface UploadSlot {
  /** Largest file this upload may carry. */
  maxBytes: number;
  /** The 413 to answer when the file turns out larger than `maxBytes`. */
  tooLarge(): BayError;
}

type Access = Driver & WorkspaceArchiveAccess;

export class WorkspaceFiles {
  readonly usage: WorkspaceUsage;
  private readonly now: () => number;

  constructor(private readonly deps: WorkspaceFilesDeps) {
    this.now = deps.now ?? Date.now;
    this.usage = new WorkspaceUsage({ measure: (ws) => this.measure(ws), ttlMs: deps.usageTtlMs, now: this.now });
  }

  /** A UTF-8 text file; binary files are refused with a hint to use download. */
  async read(owner: string, id: string, rawPath: string): Promise<{ path: string; content: string }> {
    const rel = normalizeWorkspacePath(rawPath);
    const ws = await this.open(owner, id);
    const max = this.deps.limits.maxFileBytes;
    return this.withHelper(ws, async (driver, helper) => {
      const { stat } = await this.resolve(driver, helper, rel, "existing");
      if (isDir(stat)) throw new BayError("validation_error", `path is a directory: ${rel}`, { details: { path: rel } });
      if (stat.size > max)
        throw new BayError("payload_too_large", `file is larger than ${max} bytes; use download`, {
          details: { path: rel, size: stat.size, limit_bytes: max },
        });
      const { stream } = await driver.getArchive(helper, absolute(rel));
      return { path: rel, content: decodeText(await readFirstFile(stream, rel, max), rel, id) };
    });
  }

  /** Writes a UTF-8 text file (0644, uid 1000), creating missing parents (0755). */
  async write(owner: string, id: string, rawPath: string, content: string): Promise<{ status: "ok"; path: string; size: number }> {
    const rel = writablePath(rawPath);
    const bytes = Buffer.from(content, "utf8");
    const max = this.deps.limits.maxFileBytes;
    if (bytes.byteLength > max) {
      throw new BayError("payload_too_large", `file content exceeds the limit of ${max} bytes; use upload for large files`, {
        details: { limit_bytes: max, size: bytes.byteLength },
      });
    }
    const ws = await this.open(owner, id);
    await this.usage.assertRoom(ws, bytes.byteLength);
    return this.put(ws, rel, bytes.byteLength, bytes);
  }

  /** Deletes a file, or a directory recursively. The workspace root is refused. */
  async delete(owner: string, id: string, rawPath: string): Promise<{ status: "ok" }> {
    const rel = normalizeWorkspacePath(rawPath);
    if (rel === ".")
      throw new BayError("invalid_path", "invalid path: cannot delete the workspace root", { details: { path: rel, reason: "root" } });
    const ws = await this.open(owner, id);
    // rm does not follow a final symlink (it removes the link), so only the parents must be link-free.
    await this.withHelper(ws, (driver, helper) => this.resolve(driver, helper, rel, "existing", { allowFinalLink: true }));
    const res = await this.access().runHelper(
      ws.volumeName,
      this.deps.helperImage,
      this.helperLabels(ws),
      ["rm", "-rf", "--", absolute(rel)],
      HELPER_COMMAND_MS,
    );
    this.usage.forget(ws.id);
    if (res.exitCode !== 0) {
      throw new BayError("internal_error", `could not delete ${rel}`, {
        details: { path: rel, exit_code: res.exitCode },
        internal: { output: res.output.slice(0, 500) },
      });
    }
    return { status: "ok" };
  }

  /** The immediate children of a directory; only tar headers are read, bodies stream past. */
  async list(owner: string, id: string, rawPath: string): Promise<{ path: string; entries: FileEntry[]; truncated: boolean }> {
    const rel = normalizeWorkspacePath(rawPath);
    const ws = await this.open(owner, id);
    return this.withHelper(ws, async (driver, helper) => {
      const { stat } = await this.resolve(driver, helper, rel, "existing");
      if (!isDir(stat)) throw new BayError("validation_error", `not a directory: ${rel}`, { details: { path: rel } });
      const { stream } = await driver.getArchive(helper, absolute(rel));
      const { children, truncated } = await listChildren(stream, MAX_LIST_ENTRIES);
      const entries = children.map((h) => ({
        name: h.name,
        path: rel === "." ? h.name : `${rel}/${h.name}`,
        is_file: h.type === "file" || h.type === "contiguous-file",
        is_dir: h.type === "directory",
        size: h.type === "directory" ? 0 : (h.size ?? 0),
        modified_time: (h.mtime ?? new Date(0)).toISOString(),
      }));
      return { path: rel, entries, truncated };
    });
  }

  /** The limits of an upload into a workspace: the smaller of the upload limit and the room left. */
  async uploadSlot(owner: string, id: string): Promise<UploadSlot> {
    const ws = await this.open(owner, id);
    return this.slotFor(ws, await this.usage.room(ws));
  }

  /** Puts a file received on Bay's disk into the workspace (streamed as a tar). */
  async commitUpload(owner: string, id: string, received: ReceivedFile): Promise<{ status: "ok"; path: string; size: number }> {
    const rel = writablePath(received.path);
    const ws = await this.open(owner, id);
    await this.usage.assertRoom(ws, received.size);
    const body = createReadStream(received.file);
    try {
      return await this.put(ws, rel, received.size, body);
    } finally {
      // Closed whatever happened (a failed putArchive may leave it half read), so the temp file's fd and space are freed.
      body.destroy();
    }
  }

  /** A file's bytes as a stream; the helper lives until the stream ends or is cancelled. */
  async download(owner: string, id: string, rawPath: string): Promise<{ body: ReadableStream<Uint8Array>; name: string; size: number }> {
    const rel = normalizeWorkspacePath(rawPath);
    const ws = await this.open(owner, id);
    const driver = this.access();
    const helper = await this.createHelper(driver, ws);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(watchdog);
      void this.removeHelper(helper);
    };
    const watchdog = setTimeout(release, DOWNLOAD_DEADLINE_MS);
    watchdog.unref?.();
    try {
      const { stat } = await this.resolve(driver, helper, rel, "existing");
      if (isDir(stat)) throw new BayError("validation_error", `not a file: ${rel}`, { details: { path: rel } });
      const { stream } = await driver.getArchive(helper, absolute(rel));
      const body = await streamFirstFile(stream, rel, release);
      return { body, name: rel.split("/").pop() ?? rel, size: stat.size };
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * Room left in a sandbox's workspace, for the sandbox file routes; null when the
   * sandbox is unknown (the capability router then answers its 404).
   */
  async sandboxRoom(owner: string, sandboxId: string): Promise<{ ws: WorkspaceRecord; room: WorkspaceRoom; slot: UploadSlot } | null> {
    const sb = await this.deps.stores.sandboxes.findLive(owner, sandboxId, this.now());
    const ws = sb ? await this.deps.stores.workspaces.get(sb.workspaceId) : null;
    if (!ws || ws.deletedAt !== null) return null;
    const room = await this.usage.room(ws);
    return { ws, room, slot: this.slotFor(ws, room) };
  }

  private slotFor(ws: WorkspaceRecord, room: WorkspaceRoom): UploadSlot {
    const maxUpload = this.deps.limits.maxUploadBytes;
    if (room.remainingBytes < maxUpload) return { maxBytes: room.remainingBytes, tooLarge: () => quotaError(ws, room) };
    return {
      maxBytes: maxUpload,
      tooLarge: () =>
        new BayError("payload_too_large", `upload exceeds the limit of ${maxUpload} bytes`, { details: { limit_bytes: maxUpload } }),
    };
  }

  private async put(ws: WorkspaceRecord, rel: string, size: number, body: Uint8Array | AsyncIterable<Uint8Array>) {
    return this.withHelper(ws, async (driver, helper) => {
      const { stat, missingDirs } = await this.resolve(driver, helper, rel, "writable");
      if (stat && isDir(stat)) throw new BayError("validation_error", `path is a directory: ${rel}`, { details: { path: rel } });
      await sendOneFileTar({ dirs: missingDirs, name: rel, size, body }, (tar) => driver.putArchive(helper, ROOT, tar));
      this.usage.added(ws.id, size);
      return { status: "ok" as const, path: rel, size };
    });
  }

  /**
   * Stats every component of `rel` in the helper. Refuses symlinks (invalid_path)
   * and non-directory parents; for a write, reports which parents must be created.
   */
  private async resolve(
    driver: Access,
    helper: string,
    rel: string,
    mode: "existing",
    opts?: { allowFinalLink?: boolean },
  ): Promise<{ stat: ArchiveStat; missingDirs: string[] }>;
  private async resolve(
    driver: Access,
    helper: string,
    rel: string,
    mode: "writable",
  ): Promise<{ stat: ArchiveStat | null; missingDirs: string[] }>;
  private async resolve(
    driver: Access,
    helper: string,
    rel: string,
    mode: "existing" | "writable",
    opts: { allowFinalLink?: boolean } = {},
  ): Promise<{ stat: ArchiveStat | null; missingDirs: string[] }> {
    const parts = rel === "." ? [] : rel.split("/");
    const prefixes = [".", ...parts.map((_, i) => parts.slice(0, i + 1).join("/"))];
    const stats = await Promise.all(prefixes.map((p) => driver.statPath(helper, absolute(p))));
    const last = prefixes.length - 1;
    for (let i = 0; i <= last; i++) {
      const st = stats[i];
      const prefix = prefixes[i]!;
      if (!st) {
        if (mode === "existing") throw new BayError("file_not_found", `file not found: ${rel}`, { details: { path: rel } });
        return { stat: null, missingDirs: prefixes.slice(i, last) };
      }
      if (isLink(st) && !(i === last && opts.allowFinalLink)) {
        throw new BayError("invalid_path", `invalid path: ${prefix} is a symlink`, { details: { path: rel, reason: "symlink" } });
      }
      if (i < last && !isDir(st)) {
        if (mode === "existing") throw new BayError("file_not_found", `file not found: ${rel}`, { details: { path: rel } });
        throw new BayError("validation_error", `not a directory: ${prefix}`, { details: { path: rel } });
      }
    }
    return { stat: stats[last]!, missingDirs: [] };
  }

  /** A live workspace of this owner (404 otherwise); marks it accessed. */
  private async open(owner: string, id: string): Promise<WorkspaceRecord> {
    const ws = await this.deps.stores.workspaces.findLive(owner, id);
    if (!ws) throw notFound("workspace", id);
    await this.deps.stores.workspaces.touch(ws.id, this.now());
    return ws;
  }

  private access(): Access {
    const driver = this.deps.driver;
    if (!hasArchiveAccess(driver)) throw new BayError("not_implemented", `the ${driver.name} driver has no direct workspace access`);
    return driver;
  }

  private helperLabels(ws: WorkspaceRecord): Partial<ResourceLabels> {
    return { owner: ws.owner, workspace_id: ws.id, instance_id: this.deps.instanceId };
  }

  /** The volume may not exist yet (volumes are created lazily); creating it is idempotent. */
  private async ensureVolume(driver: Access, ws: WorkspaceRecord): Promise<void> {
    // Same labels as a session would give it: only a managed workspace's volume names its sandbox.
    await driver.createVolume(ws.volumeName, {
      owner: ws.owner,
      workspace_id: ws.id,
      instance_id: this.deps.instanceId,
      workspace_kind: ws.managed ? "managed" : "external",
      sandbox_id: ws.managed ? (ws.sandboxId ?? undefined) : undefined,
    });
  }

  private async createHelper(driver: Access, ws: WorkspaceRecord): Promise<string> {
    await this.ensureVolume(driver, ws);
    return driver.createHelperContainer(ws.volumeName, this.deps.helperImage, this.helperLabels(ws));
  }

  private async withHelper<T>(ws: WorkspaceRecord, fn: (driver: Access, helper: string) => Promise<T>): Promise<T> {
    const driver = this.access();
    const helper = await this.createHelper(driver, ws);
    try {
      return await fn(driver, helper);
    } finally {
      await this.removeHelper(helper);
    }
  }

  private async removeHelper(id: string): Promise<void> {
    try {
      await this.deps.driver.destroyContainer(id);
    } catch (e) {
      this.deps.logger.warn("helper container removal failed", { container_id: id, error: errorMessage(e) });
    }
  }

  /** `du -sb` of the volume in a throwaway container. */
  private async measure(ws: WorkspaceRecord): Promise<number> {
    const driver = this.access();
    await this.ensureVolume(driver, ws);
    const res = await driver.runHelper(ws.volumeName, this.deps.helperImage, this.helperLabels(ws), ["du", "-sb", ROOT], HELPER_COMMAND_MS);
    // du exits 1 when it cannot read some directory but still prints the total it could.
    const total = /^(\d+)\s+\/workspace\s*$/m.exec(res.output);
    if (!total) {
      throw new BayError("internal_error", `could not measure workspace ${ws.id}`, {
        details: { exit_code: res.exitCode },
        internal: { output: res.output.slice(0, 500) },
      });
    }
    return Number(total[1]);
  }
}

/** Normalised path of a file to write; the root itself is refused. */
function writablePath(rawPath: string): string {
  const rel = normalizeWorkspacePath(rawPath);
  if (rel === ".")
    throw new BayError("invalid_path", "invalid path: cannot write to the workspace root", { details: { path: rel, reason: "root" } });
  return rel;
}

function decodeText(bytes: Uint8Array, rel: string, id: string): string {
  const hint = `GET /v1/workspaces/${id}/filesystem/download?path=${encodeURIComponent(rel)}`;
  const binary = () =>
    new BayError("validation_error", `file is not UTF-8 text: ${rel}; download binary files with ${hint}`, {
      details: { path: rel, reason: "binary" },
    });
  if (bytes.includes(0)) throw binary();
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw binary();
  }
}
