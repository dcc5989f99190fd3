import { Readable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import type Docker from "dockerode";
import type { ArchiveStat, HelperRunResult, ResourceLabels, TarInput } from "../driver.ts";
import { BayError } from "../../errors.ts";
import { WORKSPACE_MOUNT } from "./container-config.ts";
import { engineMessage, imageNotFound, isImageMissing, isNotFound, translateDockerError } from "./docker-errors.ts";
import type { LabelCodec } from "./labels.ts";
import { demuxLogs } from "./log-frames.ts";

export type { ArchiveStat, TarInput, WorkspaceArchiveAccess } from "../driver.ts";

/** Marks helper containers so reconcile can tell them from sandboxes. */
export const HELPER_ROLE = { role: "workspace-helper" } as const;

/**
 * The workspace mount of a helper. Should the volume be gone (removed behind Bay's
 * back, or a helper racing a workspace delete), Docker creates it from the mount:
 * it then carries the same labels as a volume Bay creates (owner, workspace,
 * instance, managed-by), so reconcile still sees it. No role or session labels.
 */
function workspaceMount(codec: LabelCodec, volumeName: string, labels: Partial<ResourceLabels>): Docker.MountSettings {
  // dockerode's type wants NoCopy and DriverConfig too; the engine does not (its defaults are right here).
  const VolumeOptions = { Labels: codec.encode({ ...labels, session_id: undefined }) } as Docker.MountSettings["VolumeOptions"];
  return { Type: "volume", Source: volumeName, Target: WORKSPACE_MOUNT, VolumeOptions };
}

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
  return { stream: res, stat: pathStatOf(res.headers) };
}

function pathStatOf(headers: Record<string, string | string[] | undefined> | undefined): ArchiveStat {
  const header = headers?.["x-docker-container-path-stat"];
  const raw = Array.isArray(header) ? header[0] : header;
  const stat = raw ? (JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as ArchiveStat) : undefined;
  if (!stat) throw new BayError("internal_error", "docker engine sent an archive answer without a path stat");
  return stat;
}

/**
 * Stats `path` (HEAD on the archive endpoint; the last component is not followed).
 * A HEAD answer has no body, so a 404 cannot tell a missing path from a missing
 * container: callers use it on a container they just created and read it as "no such path".
 */
export async function statPath(docker: Docker, containerId: string, path: string): Promise<ArchiveStat | null> {
  let res: NodeJS.ReadableStream & { headers?: Record<string, string | string[] | undefined> };
  try {
    res = await docker.getContainer(containerId).infoArchive({ path });
  } catch (err) {
    if (isNotFound(err)) return null;
    throw translateDockerError(err, `stat ${path} in ${containerId}`);
  }
  (res as NodeJS.ReadableStream & { resume(): void }).resume();
  return pathStatOf(res.headers);
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
  const container = await createHelper(docker, codec, volumeName, image, labels, { Cmd: ["true"] }, {});
  return container.id;
}

/**
 * Creates a helper container on `volumeName`: Bay's labels and the helper role, no
 * network, no capabilities, no new privileges; `options` and `hostConfig` add to that.
 */
async function createHelper(
  docker: Docker,
  codec: LabelCodec,
  volumeName: string,
  image: string,
  labels: Partial<ResourceLabels>,
  options: Partial<Docker.ContainerCreateOptions>,
  hostConfig: Docker.HostConfig,
): Promise<Docker.Container> {
  try {
    return await docker.createContainer({
      ...options,
      Image: image,
      Labels: codec.encode(labels, HELPER_ROLE),
      NetworkDisabled: true,
      HostConfig: {
        ...hostConfig,
        Mounts: [workspaceMount(codec, volumeName, labels)],
        NetworkMode: "none",
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
      },
    });
  } catch (err) {
    if (isImageMissing(err)) throw imageNotFound(image, err);
    throw translateDockerError(err, `create helper container for volume ${volumeName}`);
  }
}

const HELPER_MEMORY = 128 * 1024 * 1024;

/**
 * Runs `command` to completion in a throwaway container that mounts `volumeName` at
 * /workspace: no network, no capabilities, read-only root, uid 1000, small limits.
 * The container is removed whatever happens (timeout, engine error).
 */
export async function runHelperContainer(
  docker: Docker,
  codec: LabelCodec,
  volumeName: string,
  image: string,
  labels: Partial<ResourceLabels>,
  command: string[],
  timeoutMs: number,
): Promise<HelperRunResult> {
  const container = await createHelper(
    docker,
    codec,
    volumeName,
    image,
    labels,
    { Entrypoint: command.slice(0, 1), Cmd: command.slice(1), User: "1000:1000", WorkingDir: WORKSPACE_MOUNT },
    { ReadonlyRootfs: true, Memory: HELPER_MEMORY, MemorySwap: HELPER_MEMORY, PidsLimit: 32, RestartPolicy: { Name: "no" } },
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const waited = container.wait({ condition: "next-exit" }) as Promise<{ StatusCode: number }>;
    // Should start() throw, `waited` is never awaited: its rejection must not go unhandled (Bun exits on one).
    waited.catch(() => {});
    await container.start();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BayError("timeout", `helper command did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    const { StatusCode } = await Promise.race([waited, timeout]);
    const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return { exitCode: StatusCode, output: demuxLogs(logs) };
  } catch (err) {
    throw translateDockerError(err, `run helper command on volume ${volumeName}`);
  } finally {
    clearTimeout(timer);
    await container.remove({ force: true, v: true }).catch(() => {});
  }
}
