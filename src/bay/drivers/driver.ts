/**
 * The contract between Bay's domain and a container runtime. Drivers hold no
 * business policy: they create, start, stop and inspect what the domain asks
 * for, and translate their engine's errors into `BayError`s at this edge
 * (`driver_unavailable` when the engine cannot be reached, `not_found` for a
 * missing object, `timeout` past a deadline, `internal_error` otherwise).
 */

/** Labels every Bay container and volume carries (keys are prefixed `bay.` on Docker). */
export interface ResourceLabels {
  /** Empty on a warm-pool member's objects: its owner is known only at the claim (the database records it). */
  owner: string;
  sandbox_id: string;
  session_id?: string;
  workspace_id: string;
  profile_id?: string;
  /** Identifies the Bay installation, so reconcile only ever touches our own objects. */
  instance_id: string;
  /** "managed" | "external" for volumes. */
  workspace_kind?: string;
  /** The profile whose warm pool started this object (labels cannot change when the member is claimed). */
  pool?: string;
}

/** Labels of a volume: an external workspace's volume names no sandbox. */
export type VolumeLabels = Omit<ResourceLabels, "sandbox_id"> & { sandbox_id?: string | undefined };

/**
 * A sandbox's network: `egress` = a driver-managed network with the public
 * internet only (no host, no other sandboxes, no private or link-local ranges);
 * `none` = a driver-managed network with no egress at all (Bay still reaches the
 * runtime); `{docker_network}` = an existing network of the operator's, unfiltered.
 */
export type SandboxNetwork = "egress" | "none" | { docker_network: string };

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
  /**
   * The volume's labels, which the engine gives it should it create the volume for the
   * mount (the volume was removed between its create and the container's: a delete
   * racing the start), so reconcile still knows it as Bay's.
   */
  volumeLabels?: VolumeLabels;
  /** Where the container is attached; undefined = the driver's own network (its connect mode's). */
  network?: SandboxNetwork;
  /** Optional OCI runtime, e.g. "runsc". */
  runtime?: string;
  readOnlyRootfs?: boolean;
  tmpfsMb?: number;
  /** The container gets a stdin that `startContainer` writes its credentials line to, once. */
  credentialsOnStdin?: boolean;
  /** Log rotation: the container's output is kept in at most `maxFiles` files of `maxSizeMb`. */
  logs?: { maxSizeMb: number; maxFiles: number };
}

/** A container spec without what each container has of its own (name, labels, volume). */
export type ContainerShape = Omit<ContainerSpec, "name" | "labels" | "volumeName" | "volumeLabels">;

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

/** A running container's resource use, sampled by the engine. */
export interface ContainerStats {
  /** CPU time used over the sampling interval, as a percentage of one CPU times the CPUs it may use (0–100 × cpus). */
  cpuUsedPct: number;
  /** Memory in use (without the page cache the kernel can drop). */
  memoryUsedBytes: number;
  /** The container's memory limit. */
  memoryLimitBytes: number;
  /** The container's page cache (file-backed memory, some of it counted in memoryUsedBytes). */
  memoryCacheBytes: number;
  /** CPU time the container has used since it started, in nanoseconds (two readings give a share over their interval). */
  cpuTotalNs: number;
}

export interface ContainerStatsOptions {
  /** One reading at once (cpuUsedPct is then 0: it needs the engine's second reading, about a second later). */
  oneShot?: boolean;
}

export interface Driver {
  /** Driver name, e.g. "docker". */
  readonly name: string;
  /** Verifies the engine answers; throws driver_unavailable otherwise. */
  ping(): Promise<void>;
  /** Whether an image is present locally. */
  imageExists(image: string): Promise<boolean>;
  /** The id of the image a name points at now (changes when the name is given to a rebuilt image), or null when absent. */
  imageId(image: string): Promise<string | null>;
  /**
   * What a container of `shape` is created with by this driver (its engine request, how it
   * is attached and reached), less what each container has of its own; no engine call.
   * Equal for equal configurations (warm-pool fingerprints, pool-fingerprint.ts).
   */
  containerRecipe(shape: ContainerShape): unknown;
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
  /** A running container's CPU and memory use now; null when it is not running (or gone). */
  containerStats(id: string, opts?: ContainerStatsOptions): Promise<ContainerStats | null>;
  /** OCI runtimes the engine offers (e.g. runc, runsc); drivers without the notion leave it out. */
  runtimes?(): Promise<string[]>;
  /** Lists containers whose labels include every given label. */
  listContainers(labels: Partial<ResourceLabels>): Promise<ContainerInfo[]>;
  /** Creates a named volume; an existing volume with that name is reused. */
  createVolume(name: string, labels: VolumeLabels): Promise<void>;
  /** Removes a volume; missing is not an error. */
  removeVolume(name: string): Promise<void>;
  /** Lists volumes whose labels include every given label. */
  listVolumes(labels: Partial<ResourceLabels>): Promise<VolumeInfo[]>;
  /** The files of workspace volumes, reached without a running runtime. */
  readonly volumeFiles: VolumeFiles;
  /** Removes what runtimes left on the host for containers that are gone (unix_socket mode's directories); how many. */
  sweepSockets?(): Promise<number>;
  /** Releases engine connections. */
  close(): Promise<void>;
}

/** What an entry of a volume is; a symlink is reported as itself, never followed. */
export type FileKind = "file" | "directory" | "symlink" | "other";

/** One entry of a volume, as `lstat` sees it. */
export interface FileStat {
  /** The last segment of its path ("." for the volume root). */
  name: string;
  kind: FileKind;
  /** Bytes of a file, length of a symlink's target, 0 for anything else. */
  size: number;
  /** Last modification, ms since the epoch. */
  modifiedAt: number;
}

/** A workspace volume as the data plane addresses it. */
export interface VolumeRef {
  name: string;
  /** Labels the volume is created with if a call finds it missing; its helpers carry the same owner and workspace. */
  labels: VolumeLabels;
}

/** The bytes of a file to write: exactly `size` of them, whole or streamed. */
export interface FileBody {
  size: number;
  bytes: Uint8Array | AsyncIterable<Uint8Array>;
}

/** A regular file being read. The driver holds resources until `body` fails or is cancelled, or gives its last byte (it ends once they are freed). */
export interface OpenedFile {
  stat: FileStat;
  body: ReadableStream<Uint8Array>;
}

/** The immediate children of a directory, sorted by name. */
export interface DirectoryListing {
  entries: FileStat[];
  /** True when the directory holds more than the `maxEntries` listed (which ones is unspecified). */
  truncated: boolean;
}

/**
 * The files of workspace volumes, without a running runtime. Paths are normalised
 * and relative to the volume's root ("." is the root); a missing volume is created
 * with its labels. No call follows a symlink: one on the way (or at the end, but for
 * `stat` and `remove`) and a parent that is not a directory answer `invalid_path`;
 * a missing path answers `file_not_found`, the wrong kind of entry `validation_error`.
 */
/** How `VolumeFiles.remove` removes. */
export interface RemoveOptions {
  /** The entry must be a directory (not a file, nor a symlink to one), as `rm -r name/` requires. */
  directory?: boolean;
}

export interface VolumeFiles {
  /** The entry at `path`, a final symlink reported as itself; null when nothing is there. */
  stat(volume: VolumeRef, path: string): Promise<FileStat | null>;
  /** Opens a regular file for reading. */
  read(volume: VolumeRef, path: string): Promise<OpenedFile>;
  /** Writes a regular file (0644, uid 1000), replacing a file, creating missing parents (0755). */
  write(volume: VolumeRef, path: string, body: FileBody): Promise<void>;
  /** Lists a directory: at most `maxEntries`, within `timeoutMs` (else `timeout`). */
  list(volume: VolumeRef, path: string, opts: { maxEntries: number; timeoutMs: number }): Promise<DirectoryListing>;
  /**
   * Removes a file or a whole directory tree; a final symlink is removed, not followed.
   * With `directory` (the path was given as `dir/`), only a directory: anything else there is `invalid_path`.
   */
  remove(volume: VolumeRef, path: string, opts?: RemoveOptions): Promise<void>;
  /** Bytes the volume's entries take (apparent sizes). */
  usage(volume: VolumeRef): Promise<number>;
}
