import { Readable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import type Docker from "dockerode";
import type { ResourceLabels } from "../driver.ts";
import { BayError } from "../../errors.ts";
import { WORKSPACE_MOUNT } from "./container-config.ts";
import { engineMessage, imageNotFound, isImageMissing, isNotFound, translateDockerError } from "./docker-errors.ts";
import type { LabelCodec } from "./labels.ts";

/** What Docker reports about the path it archived (header X-Docker-Container-Path-Stat). */
export interface ArchiveStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** A tar body: Node stream, web stream or bytes. */
export type TarInput = NodeJS.ReadableStream | ReadableStream<Uint8Array> | Uint8Array;

/** Workspace file access without a running runtime (candidate for the Driver interface). */
export interface WorkspaceArchiveAccess {
  /** Extracts a tar into directory `dir` of a container (running or only created). */
  putArchive(containerId: string, dir: string, tar: TarInput): Promise<void>;
  /** Streams `path` of a container (running or only created) as a tar, with its stat. */
  getArchive(containerId: string, path: string): Promise<{ stream: NodeJS.ReadableStream; stat: ArchiveStat }>;
  /** Creates, never starts, a container mounting `volumeName` at /workspace. */
  createHelperContainer(volumeName: string, image: string, labels: Partial<ResourceLabels>): Promise<string>;
}

/** Marks helper containers so reconcile can tell them from sandboxes. */
export const HELPER_ROLE = { role: "workspace-helper" } as const;

/**
 * A 404 from the archive endpoints means either the container or the path is gone;
 * only the engine's message tells which, and callers treat the two differently.
 */
function archiveError(err: unknown, what: string, path: string): BayError {
  if (isNotFound(err) && !/no such container/i.test(engineMessage(err))) {
    return new BayError("file_not_found", `file not found: ${path}`, { details: { path }, cause: err });
  }
  return translateDockerError(err, what);
}

const toNodeBody = (tar: TarInput): NodeJS.ReadableStream | Buffer => {
  if (tar instanceof Uint8Array) return Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength);
  // The DOM and node:stream/web ReadableStream types differ only nominally; at runtime they are one class.
  if (tar instanceof ReadableStream) return Readable.fromWeb(tar as unknown as NodeWebStream);
  return tar;
};

/** Extracts a tar into `dir` inside the container; `dir` must exist. */
export async function putArchive(docker: Docker, containerId: string, dir: string, tar: TarInput): Promise<void> {
  try {
    await docker.getContainer(containerId).putArchive(toNodeBody(tar), { path: dir });
  } catch (err) {
    throw archiveError(err, `put archive into ${containerId}`, dir);
  }
}

/** Streams `path` inside the container as a tar, with Docker's stat of that path. */
export async function getArchive(
  docker: Docker,
  containerId: string,
  path: string,
): Promise<{ stream: NodeJS.ReadableStream; stat: ArchiveStat }> {
  let res: NodeJS.ReadableStream & { headers?: Record<string, string | string[] | undefined> };
  try {
    res = await docker.getContainer(containerId).getArchive({ path });
  } catch (err) {
    throw archiveError(err, `get archive from ${containerId}`, path);
  }
  const header = res.headers?.["x-docker-container-path-stat"];
  const raw = Array.isArray(header) ? header[0] : header;
  const stat = raw ? (JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as ArchiveStat) : undefined;
  if (!stat) throw new BayError("internal_error", "docker engine sent an archive without a path stat");
  return { stream: res, stat };
}

/**
 * Creates, and never starts, a container that mounts `volumeName` at /workspace, so the
 * archive API can read and write a workspace without a running runtime. It has no
 * network and no capabilities; the command is only there because Docker requires one.
 */
export async function createHelperContainer(
  docker: Docker,
  codec: LabelCodec,
  volumeName: string,
  image: string,
  labels: Partial<ResourceLabels>,
): Promise<string> {
  try {
    const container = await docker.createContainer({
      Image: image,
      Cmd: ["true"],
      Labels: codec.encode(labels, HELPER_ROLE),
      NetworkDisabled: true,
      HostConfig: {
        Mounts: [{ Type: "volume", Source: volumeName, Target: WORKSPACE_MOUNT }],
        NetworkMode: "none",
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
      },
    });
    return container.id;
  } catch (err) {
    if (isImageMissing(err)) throw imageNotFound(image, err);
    throw translateDockerError(err, `create helper container for volume ${volumeName}`);
  }
}
