/**
 * The root of an archive helper: an image that holds nothing but an empty
 * `/workspace` owned by uid 1000, made on the engine by Bay itself (an import of a
 * one-entry tar: no registry, no build, a remote engine alike).
 *
 * Why: the engine resolves a path's symlinks inside the helper's own root when it
 * moves bytes. Bay walks the path first and refuses symlinks, but code in a sandbox
 * can swap a directory for a symlink (`d -> /`) between that walk and the transfer.
 * On a helper made from a real image that race read the image's files, e.g. its
 * `/etc/passwd` (review s53). From this root such a race reaches nothing: no file
 * but the workspace's own. (The helpers are created with a read-only root too, which
 * refuses a write aimed at the root itself; a write the engine unpacks through a
 * symlink still lands there, as a never-started container has no read-only mount:
 * archive-races.ts catches that.)
 */
import { Readable } from "node:stream";
import type Docker from "dockerode";
import { followProgress } from "../../images/base-image.ts";
import { WORKSPACE_MOUNT } from "./container-config.ts";
import { isNotFound, raceDeadline } from "./docker-errors.ts";

const REPO = "bay-archive-root";
/** Its tag: a new one for any change to what the tar holds. */
const TAG = "1";
export const ARCHIVE_ROOT_IMAGE = `${REPO}:${TAG}`;

/** The one entry: the mount point, as the Ship image has it (uid 1000 owns it). */
async function rootTar(): Promise<Buffer> {
  const { pack } = await import("tar-stream");
  const p = pack();
  p.entry({ name: WORKSPACE_MOUNT.replace(/^\//, ""), type: "directory", mode: 0o755, uid: 1000, gid: 1000, mtime: new Date(0) });
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Makes ARCHIVE_ROOT_IMAGE on the engine unless it is there as Bay makes it: an image
 * by that name is trusted only when its one layer is this tar (the tar is the same
 * bytes every time, so its digest is the layer's id). Any other image by that name (a
 * stale build, a retag by mistake) would bring the race's reach back: it is replaced.
 */
export async function ensureArchiveRoot(docker: Docker, signal: AbortSignal): Promise<void> {
  const tar = await rootTar();
  const layer = `sha256:${new Bun.CryptoHasher("sha256").update(tar).digest("hex")}`;
  try {
    const image = await raceDeadline(docker.getImage(ARCHIVE_ROOT_IMAGE).inspect(), signal);
    const layers = image.RootFS?.Layers ?? [];
    if (layers.length === 1 && layers[0] === layer) return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const stream = await raceDeadline(docker.importImage(Readable.from([tar]), { repo: REPO, tag: TAG }), signal);
  await raceDeadline(followProgress(docker, stream), signal);
}
