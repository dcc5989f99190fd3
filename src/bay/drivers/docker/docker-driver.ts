import { Docker } from "./dockerode.ts";
import type { ContainerInspectInfo } from "dockerode";
import { BayError } from "../../errors.ts";
import type {
  ContainerInfo,
  ContainerShape,
  ContainerSpec,
  ContainerState,
  ContainerStats,
  ContainerStatsOptions,
  Driver,
  ResourceLabels,
  VolumeLabels,
  RuntimeEndpoint,
  VolumeInfo,
} from "../driver.ts";
import { type DockerStats, statsOf } from "./docker-stats.ts";
import { connectionOptions, resolveConnectMode, type ConnectMode, type ResolvedConnectMode } from "./connect-mode.ts";
import { containerCreateOptions, containerRecipe, unmanagedNetwork } from "./container-config.ts";
import { EgressGuard, type PreparedNetwork } from "./egress.ts";
import {
  DEFAULT_CALL_TIMEOUT_MS,
  engineCall,
  engineMessage,
  engineStatus,
  imageNotFound,
  isImageMissing,
  isNotFound,
  raceDeadline,
  translateDockerError,
} from "./docker-errors.ts";
import { LabelCodec } from "./labels.ts";
import { RuntimeSockets, runtimeServesSocket, SOCKET_MOUNT, SWEEP_GRACE_MS } from "./runtime-socket.ts";
import { startWithStdinLine } from "./stdin-credentials.ts";
import { demuxLogs } from "./log-frames.ts";
import { DockerVolumeFiles, type DockerVolumeFilesOptions } from "./volume-files.ts";

export interface DockerDriverOptions {
  /** Unix socket of the engine; default /var/run/docker.sock. Ignored when `host` is set. */
  socketPath?: string;
  /** DOCKER_HOST-style URL: unix:///path or tcp://host:port. */
  host?: string;
  connectMode: ConnectMode;
  /** Network shared with Bay in container_network mode. */
  network?: string;
  /** unix_socket mode: this installation's host directory of Ship's sockets (default /run/bay/ships/bay-default). */
  socketDir?: string;
  /** Prefix of every label key; default "bay.". */
  labelPrefix?: string;
  /** Pids limit used when a spec gives none (<= 0). */
  defaultPidsLimit: number;
  /** Extra labels (unprefixed keys) put on, and required by every listing of, all objects. */
  extraLabels?: Record<string, string>;
  /** Egress control (managed networks + iptables); default: one for this engine. */
  egress?: EgressGuard;
  /** The workspace data plane's helper image and deadlines. */
  volumeFiles?: Partial<DockerVolumeFilesOptions>;
  /**
   * Deadline of each lifecycle call to the engine (ms; default 30 s): a hung engine
   * answers 503 driver_unavailable (reason engine_timeout) instead of hanging the request.
   */
  callTimeoutMs?: number;
}

/** ping and info honour an abort signal at runtime; dockerode's types only give them a callback form with options. */
type WithSignal<T> = (opts: { abortSignal: AbortSignal }) => Promise<T>;

/** Docker's many states folded into the five the domain reasons about. */
const STATE: Record<string, ContainerState> = {
  created: "created",
  running: "running",
  paused: "running",
  restarting: "running",
  exited: "exited",
  removing: "dead",
  dead: "dead",
};

/** Container names kept for socket directories (see destroyContainer). */
const MAX_SOCKET_NAMES = 10_000;

/** The Driver on a Docker engine through dockerode. */
export class DockerDriver implements Driver {
  readonly name = "docker";
  readonly volumeFiles: DockerVolumeFiles;
  /** The connect mode after resolving `auto`. */
  readonly connectMode: ResolvedConnectMode;
  private readonly docker: Docker;
  private readonly labels: LabelCodec;
  private readonly network: string | undefined;
  /** The engine this driver talks to (its URL or socket; null: the default socket). */
  private readonly engineHost: string | null;
  private readonly defaultPidsLimit: number;
  private readonly egress: EgressGuard;
  private readonly callTimeoutMs: number;
  /** unix_socket mode only. */
  private readonly sockets: RuntimeSockets | null;
  /** Names of the containers this driver created with a socket directory, by id (saves an inspect at removal). */
  private readonly socketNames = new Map<string, string>();

  constructor(opts: DockerDriverOptions) {
    this.docker = new Docker(connectionOptions(opts.host, opts.socketPath));
    this.engineHost = opts.host ?? opts.socketPath ?? null;
    this.connectMode = resolveConnectMode(opts.connectMode, opts.network);
    this.network = opts.network;
    this.labels = new LabelCodec(opts.labelPrefix ?? "bay.", opts.extraLabels);
    this.defaultPidsLimit = opts.defaultPidsLimit;
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.egress = opts.egress ?? new EgressGuard(this.docker, { local: !opts.host || opts.host.startsWith("unix://") });
    this.volumeFiles = new DockerVolumeFiles(this.docker, this.labels, opts.volumeFiles);
    if (this.connectMode === "unix_socket" && opts.host && !opts.host.startsWith("unix://")) {
      throw new BayError("validation_error", "connect_mode unix_socket needs the Docker engine on this host (DOCKER_HOST unix://…)");
    }
    this.sockets =
      this.connectMode === "unix_socket"
        ? new RuntimeSockets(opts.socketDir ?? "/run/bay/ships/bay-default", Math.max(SWEEP_GRACE_MS, 2 * this.callTimeoutMs))
        : null;
  }

  /** Verifies the engine answers; throws driver_unavailable otherwise. */
  async ping(): Promise<void> {
    await this.call("ping", (abortSignal) => (this.docker.ping as unknown as WithSignal<unknown>).call(this.docker, { abortSignal }));
  }

  /** Whether an image is present locally. */
  async imageExists(image: string): Promise<boolean> {
    return (await this.imageId(image)) !== null;
  }

  async imageId(image: string): Promise<string | null> {
    try {
      // dockerode drops the abort signal of an image inspect: the deadline races it instead.
      return (await raceDeadline(this.docker.getImage(image).inspect(), this.deadline())).Id;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw translateDockerError(err, `inspect image ${image}`, this.callTimeoutMs);
    }
  }

  /** OCI runtimes the engine has registered (`docker info`), e.g. ["runc", "runsc"]. */
  async runtimes(): Promise<string[]> {
    const info = await this.call("engine info", (abortSignal) =>
      (this.docker.info as unknown as WithSignal<unknown>).call(this.docker, { abortSignal }),
    );
    return Object.keys((info as { Runtimes?: Record<string, unknown> }).Runtimes ?? {});
  }

  containerRecipe(shape: ContainerShape): unknown {
    return containerRecipe(shape, {
      mode: this.connectMode,
      network: this.network,
      defaultPidsLimit: this.defaultPidsLimit,
      labels: this.labels,
      servesSocket: this.sockets !== null && runtimeServesSocket(shape.runtime),
      engine: this.engineHost,
    });
  }

  /** Creates (does not start) a container; returns its id. */
  async createContainer(spec: ContainerSpec): Promise<string> {
    const attachment = await this.attachmentOf(spec);
    const socketDir = this.sockets && runtimeServesSocket(spec.runtime) ? this.sockets.create(spec.name) : undefined;
    const options = containerCreateOptions(spec, {
      mode: this.connectMode,
      network: attachment.network,
      dns: attachment.dns,
      defaultPidsLimit: this.defaultPidsLimit,
      labels: this.labels,
      ...(socketDir ? { socketDir } : {}),
    });
    try {
      const { id } = await this.docker.createContainer({ ...options, abortSignal: this.deadline() });
      if (socketDir) {
        // Bounded: one another replica removed is never deleted here; a cleared name is read from the engine.
        if (this.socketNames.size >= MAX_SOCKET_NAMES) this.socketNames.clear();
        this.socketNames.set(id, spec.name);
      }
      return id;
    } catch (err) {
      if (socketDir) this.sockets?.remove(spec.name);
      if (isImageMissing(err)) throw imageNotFound(spec.image, err);
      if (spec.runtime && /unknown runtime/i.test(engineMessage(err))) {
        throw new BayError("internal_error", `OCI runtime "${spec.runtime}" of the profile is not configured on the Docker engine`, {
          details: { runtime: spec.runtime },
          internal: { engine_message: engineMessage(err) },
          cause: err,
        });
      }
      throw translateDockerError(err, `create container ${spec.name}`, this.callTimeoutMs);
    }
  }

  /** Starts a created container (writing `stdinLine` to its stdin) and returns the endpoint where its runtime listens. */
  async startContainer(id: string, runtimePort: number, stdinLine?: string): Promise<RuntimeEndpoint> {
    try {
      if (stdinLine !== undefined) await startWithStdinLine(this.docker, id, stdinLine, this.deadline());
      else await this.docker.getContainer(id).start({ abortSignal: this.deadline() });
    } catch (err) {
      // 304: already running, which is what the caller wants.
      if (engineStatus(err) !== 304) throw translateDockerError(err, `start container ${id}`, this.callTimeoutMs);
    }
    const info = await this.call(`inspect container ${id}`, (abortSignal) => this.docker.getContainer(id).inspect({ abortSignal }));
    if (!info.State.Running) {
      throw new BayError("internal_error", "the sandbox container stopped right after start", {
        details: { exit_code: info.State.ExitCode, oom_killed: info.State.OOMKilled },
        internal: { container_id: id },
      });
    }
    if (this.sockets && info.Mounts?.some((m) => m.Destination === SOCKET_MOUNT)) {
      const name = info.Name.replace(/^\//, "");
      const running = async () => (await this.containerStatus(id)).state === "running";
      return { baseUrl: await this.sockets.seal(name, running, Date.now() + this.callTimeoutMs) };
    }
    return { baseUrl: this.endpointOf(info, runtimePort) };
  }

  /** Stops a container; a missing or already stopped container is not an error. */
  async stopContainer(id: string, timeoutSeconds = 10): Promise<void> {
    try {
      // The engine waits up to t seconds before it kills: the deadline covers that too.
      const ms = timeoutSeconds * 1000 + this.callTimeoutMs;
      await this.docker.getContainer(id).stop({ t: timeoutSeconds, abortSignal: AbortSignal.timeout(ms) });
    } catch (err) {
      const status = engineStatus(err);
      if (status === 304 || status === 404) return;
      throw translateDockerError(err, `stop container ${id}`, timeoutSeconds * 1000 + this.callTimeoutMs);
    }
  }

  /** Removes a container and its anonymous volumes (and its socket directory); missing is not an error. */
  async destroyContainer(id: string): Promise<void> {
    // The socket directory is named after the container: known for the ones this driver created, read
    // from the engine for others (another replica's, or before a restart); a gone one's is left to sweepSockets.
    const name = this.sockets ? (this.socketNames.get(id) ?? (await this.containerStatus(id).catch(() => null))?.name) : undefined;
    // A failed removal that is retried reads the name from the engine again.
    this.socketNames.delete(id);
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true, abortSignal: this.deadline() });
      if (name) this.sockets?.remove(name);
    } catch (err) {
      if (name && isNotFound(err)) this.sockets?.remove(name);
      if (isNotFound(err)) return;
      // Another caller is already removing it: the outcome is the one asked for.
      if (engineStatus(err) === 409 && /already in progress/i.test(engineMessage(err))) return;
      throw translateDockerError(err, `remove container ${id}`, this.callTimeoutMs);
    }
  }

  /** Inspects a container; state "missing" when it does not exist. */
  async containerStatus(id: string): Promise<ContainerInfo> {
    let info: ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(id).inspect({ abortSignal: this.deadline() });
    } catch (err) {
      if (isNotFound(err)) return { id, name: "", state: "missing", labels: {} };
      throw translateDockerError(err, `inspect container ${id}`, this.callTimeoutMs);
    }
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ""),
      state: STATE[info.State.Status] ?? "dead",
      labels: this.labels.decode(info.Config.Labels),
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
    };
  }

  /**
   * One sample of a running container's use. The engine waits for a second reading
   * (about a second) so the CPU share covers an interval, as `docker stats` shows it;
   * `oneShot` answers at once with one reading (the sampler keeps its own previous one).
   */
  async containerStats(id: string, opts: ContainerStatsOptions = {}): Promise<ContainerStats | null> {
    let raw: DockerStats;
    try {
      // dockerode's types leave abortSignal (and one-shot, Engine API 1.41) out of stats' options; its request sends them as every call's.
      const options = { stream: false, ...(opts.oneShot ? { "one-shot": true } : {}), abortSignal: this.deadline() } as { stream: false };
      raw = (await this.docker.getContainer(id).stats(options)) as unknown as DockerStats;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw translateDockerError(err, `read stats of container ${id}`, this.callTimeoutMs);
    }
    return statsOf(raw);
  }

  /** The last `tail` lines of a container's combined output. */
  async containerLogs(id: string, tail = 200): Promise<string> {
    const buf = await this.call(`read logs of container ${id}`, (abortSignal) =>
      this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail, follow: false, abortSignal }),
    );
    return demuxLogs(buf);
  }

  /** Lists containers whose labels include every given label. */
  async listContainers(labels: Partial<ResourceLabels>): Promise<ContainerInfo[]> {
    const list = await this.call("list containers", (abortSignal) =>
      this.docker.listContainers({ all: true, filters: { label: this.labels.filters(labels) }, abortSignal }),
    );
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      state: STATE[c.State] ?? "dead",
      labels: this.labels.decode(c.Labels),
      createdAt: c.Created * 1000,
    }));
  }

  /** Creates a named volume; an existing volume with that name is reused. */
  async createVolume(name: string, labels: VolumeLabels): Promise<void> {
    // Docker's volume create already returns the existing volume for a known name.
    await this.call(`create volume ${name}`, (abortSignal) =>
      this.docker.createVolume({ Name: name, Labels: this.labels.encode(labels), abortSignal }),
    );
  }

  /** Removes a volume; missing is not an error. */
  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove({ abortSignal: this.deadline() });
    } catch (err) {
      if (isNotFound(err)) return;
      if (engineStatus(err) === 409) {
        throw new BayError("conflict", "the workspace volume is still in use", { internal: { volume: name }, cause: err });
      }
      throw translateDockerError(err, `remove volume ${name}`, this.callTimeoutMs);
    }
  }

  /** Lists volumes whose labels include every given label. */
  async listVolumes(labels: Partial<ResourceLabels>): Promise<VolumeInfo[]> {
    const res = await this.call("list volumes", (abortSignal) =>
      this.docker.listVolumes({ filters: { label: this.labels.filters(labels) }, abortSignal }),
    );
    return (res.Volumes ?? []).map((v) => ({ name: v.Name, labels: this.labels.decode(v.Labels) }));
  }

  /**
   * unix_socket mode: removes the socket directories of containers the engine no
   * longer has (a crash between a removal and its cleanup); returns how many.
   */
  async sweepSockets(): Promise<number> {
    if (!this.sockets) return 0;
    const all = await this.call("list containers", (abortSignal) => this.docker.listContainers({ all: true, abortSignal }));
    return this.sockets.sweep(new Set(all.flatMap((c) => c.Names.map((n) => n.replace(/^\//, "")))));
  }

  /** Releases engine connections. */
  async close(): Promise<void> {
    // dockerode opens one short-lived socket per request and keeps no pool: nothing to release.
  }

  /**
   * The network a spec's container joins. The managed ones are prepared (network
   * and rules) first, and a failure there fails the create: no sandbox ever runs
   * on an unfiltered network it did not ask for.
   */
  private async attachmentOf(spec: ContainerSpec): Promise<Partial<PreparedNetwork>> {
    const choice = spec.network;
    if (typeof choice !== "string") return { network: unmanagedNetwork(choice, this.connectMode, this.network) };
    if (this.connectMode === "container_network") {
      throw new BayError(
        "driver_unavailable",
        `network ${choice} needs connect_mode host_port (Bay would not reach Ship on its managed network); give the profile network: {docker_network: …} instead`,
        { details: { connect_mode: this.connectMode, network_policy: choice, reason: "connect_mode" } },
      );
    }
    return this.egress.prepare(choice);
  }

  /** The signal that ends one engine call at the driver's deadline. */
  private deadline(): AbortSignal {
    return AbortSignal.timeout(this.callTimeoutMs);
  }

  private call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return engineCall(what, fn, this.callTimeoutMs);
  }

  private endpointOf(info: ContainerInspectInfo, runtimePort: number): string {
    if (this.connectMode === "container_network") {
      const networks = info.NetworkSettings.Networks ?? {};
      const net = (this.network ? networks[this.network] : undefined) ?? Object.values(networks).find((n) => n.IPAddress);
      if (!net?.IPAddress) {
        throw new BayError("internal_error", "the sandbox container has no address on Bay's network", {
          internal: { container_id: info.Id, network: this.network },
        });
      }
      return `http://${net.IPAddress}:${runtimePort}`;
    }
    const bindings = info.NetworkSettings.Ports?.[`${runtimePort}/tcp`] ?? [];
    const binding = bindings.find((b) => b.HostIp === "127.0.0.1") ?? bindings[0];
    if (!binding?.HostPort) {
      throw new BayError("internal_error", "the sandbox container publishes no port for its runtime", {
        internal: { container_id: info.Id, port: `${runtimePort}/tcp` },
      });
    }
    return `http://127.0.0.1:${binding.HostPort}`;
  }
}
