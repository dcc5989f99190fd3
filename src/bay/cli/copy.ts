/**
 * `bay sandbox cp SRC DST`: one file between this machine and a sandbox's
 * /workspace, as `docker cp` names them (`ID:PATH` is in the sandbox). Both ways
 * stream (Bay's raw upload, its download); a download goes to a file
 * beside the destination and is renamed into place only once complete, so a
 * failed or interrupted copy (Ctrl-C, SIGTERM) leaves nothing behind, an existing
 * file is never half written, and a file replaced keeps its permissions.
 */
import { chmodSync, createWriteStream, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CliIo } from "./args.ts";
import { UsageError } from "./args.ts";
import { ClientError, type ClientTarget, printable, send } from "./client.ts";
import { onEndingSignals } from "./signals.ts";

/** `ID:PATH` (an id has no `/`, so `./a:b` and `/x:y` are local). */
const REMOTE = /^([^/:]+):(.*)$/s;

type End = { sandbox: string; path: string } | { local: string };

export function parseEnd(arg: string): End {
  const m = REMOTE.exec(arg);
  return m ? { sandbox: m[1]!, path: m[2]! } : { local: arg };
}

/** Checks the two operands: exactly one in a sandbox. */
export function copyEnds(src: string, dst: string): { from: End; to: End } {
  const from = parseEnd(src);
  const to = parseEnd(dst);
  if ("sandbox" in from === "sandbox" in to) {
    throw new UsageError("sandbox cp copies between this machine and a sandbox: exactly one of SRC and DST is ID:PATH");
  }
  return { from, to };
}

const files = (id: string) => `/v1/sandboxes/${encodeURIComponent(id)}/filesystem`;

export async function copy(target: ClientTarget, src: string, dst: string, io: CliIo): Promise<number> {
  const { from, to } = copyEnds(src, dst);
  if ("local" in from && "sandbox" in to) return upload(target, from.local, to, io);
  if ("sandbox" in from && "local" in to) return download(target, from, to.local, io);
  return 2;
}

async function upload(target: ClientTarget, local: string, to: { sandbox: string; path: string }, io: CliIo): Promise<number> {
  const kind = fileKind(local);
  if (kind !== "file") {
    io.err(printable(`bay: ${local}: ${kind === "missing" ? "no such file" : "not a regular file (copy a directory as an archive: tar)"}`));
    return 1;
  }
  // A destination that names a directory (`ID:` or `ID:dir/`) gets the file's own name.
  const path = to.path === "" || to.path.endsWith("/") ? `${to.path}${basename(local)}` : to.path;
  // The file itself as the body, with its length: Bay passes it on without reading it.
  await send(target, `${files(to.sandbox)}/upload?path=${encodeURIComponent(path)}`, {
    method: "POST",
    body: Bun.file(local),
    headers: { "content-type": "application/octet-stream" },
  });
  return 0;
}

async function download(target: ClientTarget, from: { sandbox: string; path: string }, local: string, io: CliIo): Promise<number> {
  if (from.path === "" || from.path.endsWith("/")) {
    io.err(`bay: ${from.sandbox}:${from.path}: name a file to copy (directories are not copied)`);
    return 1;
  }
  const dest = fileKind(local) === "directory" ? join(local, basename(from.path)) : local;
  // A device, pipe or socket is never replaced by a file (as root: `cp ID:f /dev/null`; review s104 L3).
  if (fileKind(dest) === "other") {
    io.err(printable(`bay: ${dest}: not a regular file or directory; name a file to write`));
    return 1;
  }
  const res = await send(target, `${files(from.sandbox)}/download?path=${encodeURIComponent(from.path)}`, { method: "GET" });
  // Short enough beside any name the destination may have (NAME_MAX is 255 bytes).
  const part = join(dirname(dest), `.bay-part-${crypto.randomUUID()}`);
  const removePart = () => {
    try {
      rmSync(part, { force: true });
    } catch {
      // nothing was made, or it cannot be named: nothing to remove
    }
  };
  // Interrupted (Ctrl-C, SIGTERM, SIGHUP), a copy leaves no part file behind.
  const stopWatching = onEndingSignals(INTERRUPTS, removePart);
  try {
    if (res.body === null) throw new ClientError("Bay's answer had no body", "http_error", res.status);
    await pipeline(
      Readable.fromWeb(res.body as unknown as import("node:stream/web").ReadableStream),
      // Readable by this user only until complete.
      createWriteStream(part, { flags: "wx", mode: 0o600 }),
    );
    // A file replaced keeps its permissions, as with cp (never set-id bits); a new one gets the umask's.
    chmodSync(part, fileKind(dest) === "file" ? statSync(dest).mode & 0o777 : 0o666 & ~process.umask());
    renameSync(part, dest);
  } catch (e) {
    removePart();
    if (e instanceof ClientError) throw e;
    io.err(printable(`bay: ${dest}: ${(e as Error).message}`));
    return 1;
  } finally {
    stopWatching();
  }
  return 0;
}

const INTERRUPTS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function fileKind(path: string): "file" | "directory" | "other" | "missing" {
  try {
    const s = statSync(path);
    return s.isFile() ? "file" : s.isDirectory() ? "directory" : "other";
  } catch {
    return "missing";
  }
}
