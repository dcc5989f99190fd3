/**
 * The engine calls of the Docker data plane, one function each: helper containers
 * on a workspace volume (created and never started, for the archive API; or run
 * to completion for a command) and the archive endpoints. They throw the engine's
 * own errors; volume-files.ts turns those into the data plane's. Every call takes
 * an AbortSignal, its deadline.
 */
import { Readable, Writable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import type Docker from "dockerode";
import type { FileKind, FileStat, VolumeRef } from "../driver.ts";
import { ARCHIVE_ROOT_IMAGE } from "./archive-root.ts";
import { WORKSPACE_MOUNT } from "./container-config.ts";
import { isNotFound } from "./docker-errors.ts";
import type { LabelCodec } from "./labels.ts";

/** Marks helper containers so reconcile can tell them from sandboxes. */
export const HELPER_ROLE = { role: "workspace-helper" } as const;

/** What the engine reports about a path (`X-Docker-Container-Path-Stat`); the last component is not followed. */
interface ArchiveStat {
  name: string;
  size: number;
  /** Go `os.FileMode` bits. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

// Go's os.FileMode type bits (io/fs): a mode with none of them is a regular file.
const GO_MODE_DIR = 2 ** 31;
const GO_MODE_SYMLINK = 2 ** 27;
const GO_MODE_TYPE = GO_MODE_DIR | GO_MODE_SYMLINK | (2 ** 26) | (2 ** 25) | (2 ** 24) | (2 ** 21) | (2 ** 19);

function kindOf(s: ArchiveStat): FileKind {
  if (s.mode & GO_MODE_DIR) return "directory";
  if (s.mode & GO_MODE_SYMLINK || s.linkTarget !== "") return "symlink";
  return s.mode & GO_MODE_TYPE ? "other" : "file";
}

/** The engine's stat as the data plane's, named `name`. */
function fileStatOf(name: string, s: ArchiveStat): FileStat {
  const kind = kindOf(s);
  const modifiedAt = Date.parse(s.mtime);
  return { name, kind, size: kind === "file" || kind === "symlink" ? s.size : 0, modifiedAt: Number.isNaN(modifiedAt) ? 0 : modifiedAt };
}

type EngineStream = NodeJS.ReadableStream & { headers?: Record<string, string | string[] | undefined>; resume(): void };

function pathStatOf(res: EngineStream): ArchiveStat {
  const header = res.headers?.["x-docker-container-path-stat"];
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw) throw new Error("docker engine sent an archive answer without a path stat");
  return JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as ArchiveStat;
}

/** A unique name for a helper, so one whose create timed out can still be found and removed. */
export const helperName = () => `bay-helper-${crypto.randomUUID()}`;

/**
 * The workspace mount of a helper. Should the volume be gone (never created yet,
 * removed behind Bay's back, or a helper racing a workspace delete), Docker creates
 * it from the mount with the volume's own labels, so reconcile still sees it.
 */
function workspaceMount(codec: LabelCodec, volume: VolumeRef): Docker.MountSettings {
  // dockerode's type wants NoCopy and DriverConfig too; the engine does not (its defaults are right here).
  const VolumeOptions = { Labels: codec.encode(volume.labels) } as Docker.MountSettings["VolumeOptions"];
  return { Type: "volume", Source: volume.name, Target: WORKSPACE_MOUNT, VolumeOptions };
}

/**
 * Creates a helper container on a volume: Bay's labels (owner, workspace, instance)
 * and the helper role, no network, no capabilities, no new privileges, no log
 * driver; `options` and `hostConfig` add to that.
 */
async function createHelper(
  docker: Docker,
  codec: LabelCodec,
  volume: VolumeRef,
  spec: { name: string; image: string; signal: AbortSignal },
  options: Partial<Docker.ContainerCreateOptions>,
  hostConfig: Docker.HostConfig,
): Promise<Docker.Container> {
  const { owner, workspace_id, instance_id } = volume.labels;
  return docker.createContainer({
    ...options,
    name: spec.name,
    Image: spec.image,
    Labels: codec.encode({ owner, workspace_id, instance_id }, HELPER_ROLE),
    NetworkDisabled: true,
    HostConfig: {
      ...hostConfig,
      Mounts: [workspaceMount(codec, volume)],
      NetworkMode: "none",
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      LogConfig: { Type: "none", Config: {} },
    },
    abortSignal: spec.signal,
  } as Docker.ContainerCreateOptions);
}

/**
 * Creates, and never starts, a helper that mounts the volume at /workspace, so the
 * archive API can read and write it without a running runtime (the command is only
 * there because Docker requires one). Its root is ARCHIVE_ROOT_IMAGE, empty
 * (archive-root.ts; the caller makes sure the image is there). Returns its id.
 */
export async function createArchiveHelper(
  docker: Docker,
  codec: LabelCodec,
  volume: VolumeRef,
  spec: { name: string; signal: AbortSignal },
): Promise<string> {
  const image = { ...spec, image: ARCHIVE_ROOT_IMAGE };
  return (await createHelper(docker, codec, volume, image, { Cmd: ["true"] }, { ReadonlyRootfs: true })).id;
}

/** Removes a helper (by id or name) and its anonymous volumes; a missing one is not an error. */
export async function removeHelper(docker: Docker, idOrName: string, signal: AbortSignal): Promise<"removed" | "missing"> {
  try {
    await docker.getContainer(idOrName).remove({ force: true, v: true, abortSignal: signal });
    return "removed";
  } catch (err) {
    if (isNotFound(err)) return "missing";
    throw err;
  }
}

/** Stats `path` in a helper (HEAD on the archive endpoint): null when the engine answers 404. */
export async function statPath(docker: Docker, helper: string, path: string, name: string, signal: AbortSignal): Promise<FileStat | null> {
  return (await statPathMode(docker, helper, path, name, signal))?.stat ?? null;
}

/** statPath, plus the entry's Unix permission bits (setuid, setgid, sticky and rwx). */
export async function statPathMode(
  docker: Docker,
  helper: string,
  path: string,
  name: string,
  signal: AbortSignal,
): Promise<{ stat: FileStat; mode: number } | null> {
  let res: EngineStream;
  try {
    res = (await docker.getContainer(helper).infoArchive({ path, abortSignal: signal })) as EngineStream;
  } catch (err) {
    // The helper was just created by the caller, so a 404 is the path, not the container.
    if (isNotFound(err)) return null;
    throw err;
  }
  res.resume();
  const s = pathStatOf(res);
  return { stat: fileStatOf(name, s), mode: unixMode(s.mode) };
}

// Go's os.FileMode keeps setuid, setgid and sticky apart from the rwx bits.
const GO_MODE_SETUID = 2 ** 23;
const GO_MODE_SETGID = 2 ** 22;
const GO_MODE_STICKY = 2 ** 20;

function unixMode(go: number): number {
  return (go & 0o777) | (go & GO_MODE_SETUID ? 0o4000 : 0) | (go & GO_MODE_SETGID ? 0o2000 : 0) | (go & GO_MODE_STICKY ? 0o1000 : 0);
}

/** Streams `path` of a helper as a tar. The signal stays attached to the whole transfer. */
export async function getArchive(docker: Docker, helper: string, path: string, signal: AbortSignal): Promise<NodeJS.ReadableStream> {
  return (await docker.getContainer(helper).getArchive({ path, abortSignal: signal })) as NodeJS.ReadableStream;
}

/** Extracts a tar into directory `dir` of a helper; `dir` must exist. */
export async function putArchive(
  docker: Docker,
  helper: string,
  dir: string,
  tar: NodeJS.ReadableStream | ReadableStream<Uint8Array>,
  signal: AbortSignal,
): Promise<void> {
  // The DOM and node:stream/web ReadableStream types differ only nominally; at runtime they are one class.
  const body = tar instanceof ReadableStream ? Readable.fromWeb(tar as unknown as NodeWebStream) : tar;
  await docker.getContainer(helper).putArchive(body, { path: dir, abortSignal: signal });
}

const HELPER_MEMORY = 128 * 1024 * 1024;
/**
 * Half a core at most (CFS quota): a helper works for one tenant's workspace outside its
 * sandbox's own limits, so a workspace made to cost du a long walk cannot take the host's cores.
 */
export const HELPER_NANO_CPUS = 500_000_000;
/** Processes a helper may run (the usage script's sh, du and a subshell need a few). */
export const HELPER_PIDS = 32;

/** How a command runs in a throwaway helper. */
export interface HelperCommand {
  name: string;
  image: string;
  command: string[];
  /** Receives the command's stdout as it arrives. */
  onStdout(chunk: Buffer): void;
  /** Stderr kept (the first bytes); the rest is read and dropped, so the command never blocks on it. */
  maxStderrBytes: number;
  /** Receives all of the command's stderr as it arrives, kept or not. */
  onStderr?(chunk: Buffer): void;
  /** Deadline of each engine call but the wait. */
  callSignal: () => AbortSignal;
  /** Deadline of the whole run; the caller removes the helper when it fires. */
  runSignal: AbortSignal;
}

/**
 * Runs a command to completion in a throwaway container mounting the volume at
 * /workspace: no network, no capabilities, read-only root, uid 1000, small limits
 * (128 MiB, half a core, 32 processes).
 * Output streams to the caller as it comes (attached before the start, nothing is
 * logged by the engine). The caller removes the container (`removeHelper`).
 */
export async function runHelperCommand(
  docker: Docker,
  codec: LabelCodec,
  volume: VolumeRef,
  run: HelperCommand,
): Promise<{ exitCode: number; stderr: string }> {
  const container = await createHelper(
    docker,
    codec,
    volume,
    { name: run.name, image: run.image, signal: run.callSignal() },
    { Entrypoint: run.command.slice(0, 1), Cmd: run.command.slice(1), User: "1000:1000", WorkingDir: WORKSPACE_MOUNT },
    {
      ReadonlyRootfs: true,
      Memory: HELPER_MEMORY,
      MemorySwap: HELPER_MEMORY,
      NanoCpus: HELPER_NANO_CPUS,
      PidsLimit: HELPER_PIDS,
      RestartPolicy: { Name: "no" },
    },
  );
  const attached = (await container.attach({
    stream: true,
    stdout: true,
    stderr: true,
    abortSignal: run.runSignal,
  } as never)) as NodeJS.ReadableStream;
  const stderr: Buffer[] = [];
  let stderrBytes = 0;
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      run.onStdout(chunk);
      done();
    },
  });
  const err = new Writable({
    write(chunk: Buffer, _enc, done) {
      run.onStderr?.(chunk);
      if (stderrBytes < run.maxStderrBytes) stderr.push(chunk.subarray(0, run.maxStderrBytes - stderrBytes));
      stderrBytes += chunk.byteLength;
      done();
    },
  });
  const drained = new Promise<void>((resolve, reject) => {
    attached.on("end", resolve);
    attached.on("close", resolve);
    attached.on("error", reject);
  });
  // Awaited below, or abandoned when start or wait fails: its rejection must never go unhandled.
  drained.catch(() => {});
  docker.modem.demuxStream(attached, out, err);
  await container.start({ abortSignal: run.callSignal() } as never);
  // "not-running" after the start: a command that already exited answers at once, with its code.
  const { StatusCode } = (await container.wait({ condition: "not-running", abortSignal: run.runSignal } as never)) as unknown as {
    StatusCode: number;
  };
  await drained;
  return { exitCode: StatusCode, stderr: Buffer.concat(stderr).toString("utf8") };
}
