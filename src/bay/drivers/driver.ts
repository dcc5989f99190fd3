/**
 * The contract between Bay's domain and a container runtime. Drivers hold no
 * business policy: they create, start, stop and inspect what the domain asks
 * for, and translate their engine's errors into `BayError`s at this edge
 * (`driver_unavailable` when the engine cannot be reached, `not_found` for a
 * missing object, `internal_error` otherwise).
 */

/** Labels every Bay container and volume carries (keys are prefixed `bay.` on Docker). */
export interface ResourceLabels {
  owner: string;
  sandbox_id: string;
  session_id?: string;
  workspace_id: string;
  profile_id?: string;
  /** Identifies the Bay installation, so reconcile only ever touches our own objects. */
  instance_id: string;
  /** "managed" | "external" for volumes. */
  workspace_kind?: string;
}

/** Labels of a volume: an external workspace's volume names no sandbox. */
export type VolumeLabels = Omit<ResourceLabels, "sandbox_id"> & { sandbox_id?: string | undefined };

export interface ContainerSpec {
  name: string;
  image: string;
  /** Port Ship listens on inside the container. */
  runtimePort: number;
  env: Record<string, string>;
  labels: ResourceLabels;
  cpus: number;
  memoryMb: number;
  pidsLimit: number;
  /** Volume name mounted at /workspace. */
  volumeName: string;
  /** Docker network mode or network name; undefined = driver default. "none": no egress (Bay still reaches the runtime). */
  network?: string;
  /** Block link-local/metadata, private ranges and the host from inside the container. */
  blockPrivateEgress?: boolean;
  /** Optional OCI runtime, e.g. "runsc". */
  runtime?: string;
  readOnlyRootfs?: boolean;
  tmpfsMb?: number;
  /** The container gets a stdin that `startContainer` writes its credentials line to, once. */
  credentialsOnStdin?: boolean;
  /** Log rotation: the container's output is kept in at most `maxFiles` files of `maxSizeMb`. */
  logs?: { maxSizeMb: number; maxFiles: number };
}

export type ContainerState = "created" | "running" | "exited" | "dead" | "missing";

export interface ContainerInfo {
  id: string;
  name: string;
  state: ContainerState;
  labels: Record<string, string>;
  exitCode?: number;
  oomKilled?: boolean;
  /** Creation time, ms since epoch (from listings). */
  createdAt?: number;
}

export interface RuntimeEndpoint {
  /** Base URL of the Ship inside, e.g. http://127.0.0.1:49153 */
  baseUrl: string;
}

export interface VolumeInfo {
  name: string;
  labels: Record<string, string>;
}

export interface Driver {
  /** Driver name, e.g. "docker". */
  readonly name: string;
  /** Verifies the engine answers; throws driver_unavailable otherwise. */
  ping(): Promise<void>;
  /** Whether an image is present locally. */
  imageExists(image: string): Promise<boolean>;
  /** Creates (does not start) a container; returns its id. */
  createContainer(spec: ContainerSpec): Promise<string>;
  /**
   * Starts a created container and returns the endpoint where its runtime listens.
   * `stdinLine`, for a container created with `credentialsOnStdin`, is written to its
   * stdin as it starts (never into its configuration).
   */
  startContainer(id: string, runtimePort: number, stdinLine?: string): Promise<RuntimeEndpoint>;
  /** Stops a container; a missing or already stopped container is not an error. */
  stopContainer(id: string, timeoutSeconds?: number): Promise<void>;
  /** Removes a container and its anonymous volumes; missing is not an error. */
  destroyContainer(id: string): Promise<void>;
  /** Inspects a container; state "missing" when it does not exist. */
  containerStatus(id: string): Promise<ContainerInfo>;
  /** The last `tail` lines of a container's combined output. */
  containerLogs(id: string, tail?: number): Promise<string>;
  /** Lists containers whose labels include every given label. */
  listContainers(labels: Partial<ResourceLabels>): Promise<ContainerInfo[]>;
  /** Creates a named volume; an existing volume with that name is reused. */
  createVolume(name: string, labels: VolumeLabels): Promise<void>;
  /** Removes a volume; missing is not an error. */
  removeVolume(name: string): Promise<void>;
  /** Lists volumes whose labels include every given label. */
  listVolumes(labels: Partial<ResourceLabels>): Promise<VolumeInfo[]>;
  /** Releases engine connections. */
  close(): Promise<void>;
}

/** What the engine reports about a path in a container; the last path component is not followed. */
export interface ArchiveStat {
  name: string;
  size: number;
  /** Go `os.FileMode` bits: 1<<31 directory, 1<<27 symlink, low 9 bits permissions. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** A tar body: Node stream, web stream or bytes. */
export type TarInput = NodeJS.ReadableStream | ReadableStream<Uint8Array> | Uint8Array;

/** Result of a helper command run to completion. */
export interface HelperRunResult {
  exitCode: number;
  /** Combined stdout and stderr. */
  output: string;
}

/**
 * Optional driver capability: workspace file access without a running runtime.
 * Drivers that offer it are recognised by `hasArchiveAccess`.
 */
export interface WorkspaceArchiveAccess {
  /** Extracts a tar into directory `dir` of a container (running or only created). */
  putArchive(containerId: string, dir: string, tar: TarInput): Promise<void>;
  /** Streams `path` of a container (running or only created) as a tar, with its stat. */
  getArchive(containerId: string, path: string): Promise<{ stream: NodeJS.ReadableStream; stat: ArchiveStat }>;
  /** Stats `path` in a container (last component not followed); null when it does not exist. */
  statPath(containerId: string, path: string): Promise<ArchiveStat | null>;
  /** Creates, never starts, a container mounting `volumeName` at /workspace. */
  createHelperContainer(volumeName: string, image: string, labels: Partial<ResourceLabels>): Promise<string>;
  /** Runs `command` (no shell, no network, uid 1000) in a throwaway container mounting `volumeName`, then removes it. */
  runHelper(
    volumeName: string,
    image: string,
    labels: Partial<ResourceLabels>,
    command: string[],
    timeoutMs: number,
  ): Promise<HelperRunResult>;
}

/** True when the driver offers `WorkspaceArchiveAccess`. */
export function hasArchiveAccess(driver: Driver): driver is Driver & WorkspaceArchiveAccess {
  const d = driver as Partial<WorkspaceArchiveAccess>;
  return (
    typeof d.putArchive === "function" &&
    typeof d.getArchive === "function" &&
    typeof d.statPath === "function" &&
    typeof d.createHelperContainer === "function" &&
    typeof d.runHelper === "function"
  );
}
