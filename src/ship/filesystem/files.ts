import { mkdir, readdir, rm, stat, lstat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ShipError } from "../errors.ts";
import { resolveExisting, resolveWorkspacePath } from "../paths.ts";

/** One directory listing entry. */
export interface DirEntry {
  name: string;
  path: string;
  is_file: boolean;
  is_dir: boolean;
  size: number;
  modified_time: string;
}

/** Reads a text file (UTF-8, invalid bytes replaced), refusing files over `maxBytes`. */
export async function readTextFile(
  workspace: string,
  path: string,
  maxBytes: number,
): Promise<{ path: string; content: string }> {
  const target = await resolveExisting(workspace, path);
  const info = await stat(target.absolute);
  if (info.isDirectory()) {
    throw new ShipError("validation_error", `path is a directory: ${target.relative}`, {
      details: { path: target.relative },
    });
  }
  if (info.size > maxBytes) {
    throw new ShipError("payload_too_large", `file is larger than ${maxBytes} bytes; use download`, {
      details: { path: target.relative, size: info.size, limit: maxBytes },
    });
  }
  const content = await Bun.file(target.absolute).text();
  return { path: target.relative, content };
}

/** Writes a text file, creating parent directories. */
export async function writeTextFile(
  workspace: string,
  path: string,
  content: string,
): Promise<{ status: "ok"; path: string; size: number }> {
  const target = await resolveWorkspacePath(workspace, path);
  if (target.relative === ".") throw new ShipError("invalid_path", "cannot write to the workspace root");
  if (target.exists && (await stat(target.absolute)).isDirectory()) {
    throw new ShipError("validation_error", `path is a directory: ${target.relative}`, {
      details: { path: target.relative },
    });
  }
  await mkdir(dirname(target.absolute), { recursive: true });
  const bytes = Buffer.from(content, "utf8");
  await writeFile(target.absolute, bytes);
  return { status: "ok", path: target.relative, size: bytes.byteLength };
}

/** Deletes a file or a directory tree. The workspace root itself is refused. */
export async function deletePath(workspace: string, path: string): Promise<{ status: "ok" }> {
  const target = await resolveExisting(workspace, path);
  if (target.relative === ".") throw new ShipError("invalid_path", "cannot delete the workspace root");
  await rm(target.absolute, { recursive: true, force: true });
  return { status: "ok" };
}

/** Lists a directory; entry paths are relative to the workspace. */
export async function listDirectory(
  workspace: string,
  path: string,
): Promise<{ path: string; entries: DirEntry[] }> {
  const target = await resolveExisting(workspace, path);
  if (!(await stat(target.absolute)).isDirectory()) {
    throw new ShipError("validation_error", `not a directory: ${target.relative}`, {
      details: { path: target.relative },
    });
  }
  const names = (await readdir(target.absolute)).sort();
  const entries: DirEntry[] = [];
  for (const name of names) {
    const full = join(target.absolute, name);
    // lstat: a symlink is listed as itself (neither file nor dir, the link's own size and
    // mtime), never as its target, which may lie outside the workspace.
    const info = await lstat(full).catch(() => null);
    if (!info) continue; // vanished meanwhile
    entries.push({
      name,
      path: target.relative === "." ? name : join(target.relative, name),
      is_file: info.isFile(),
      is_dir: info.isDirectory(),
      size: info.size,
      modified_time: info.mtime.toISOString(),
    });
  }
  return { path: target.relative, entries };
}
