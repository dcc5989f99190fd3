/**
 * The Driver in memory: a fake container engine for fast tests of Bay's
 * lifecycle rules, with no Docker. It keeps the Driver contract as the Docker
 * driver does (tests/contract/driver.test.ts runs one suite on both): labels and
 * listings, the five container states, idempotent volumes, a volume in use that
 * cannot be removed, `not_found` and `driver_unavailable` where Docker answers them.
 *
 * A started container runs a fake Ship (fake-ship.ts) in this process, on a
 * loopback port, with the credentials line it was started with; its workspace is
 * a volume of `volumes` (MemoryVolumeFiles), which the data plane (`volumeFiles`)
 * reads too, so files outlive the container as on a Docker volume.
 *
 * What it is not: a sandbox. Nothing is isolated or limited (cpus, memory, pids,
 * network and read-only rootfs are recorded, not enforced; a runtime other than runc is refused as an engine without it would), `runtimePort` is
 * not checked, and the Python and shell are small fakes. Tests that prove a
 * capability, or any hardening, run on Docker.
 *
 * Test hooks: `crash` (a container dies, like `docker kill`), `restartEngine`
 * (every container stops and their ports go to the next containers started),
 * `makeUnreachable` / `makeReachable`, `holdStarts` (starts wait until released),
 * `specOf`, and `shutdown` (stops every fake Ship; `close` leaves the engine up,
 * as closing a Docker client does, so several Bays may share one engine).
 */
import { CREDENTIALS_ENV } from "../../../protocol/ship/index.ts";
import { BayError } from "../../errors.ts";
import type {
  ContainerInfo,
  ContainerShape,
  ContainerSpec,
  ContainerStats,
  Driver,
  ResourceLabels,
  RuntimeEndpoint,
  VolumeFiles,
  VolumeInfo,
  VolumeLabels,
} from "../driver.ts";
import { FakeShip, type FakeShipQuirks } from "./fake-ship.ts";
import { checkedFiles, parseCredentials } from "./engine-checks.ts";
import { MemoryVolumeFiles } from "./volume-files.ts";

/** An image of the fake engine: a fake Ship (with its quirks), or a runtime that exits at once. */
export interface FakeImage extends FakeShipQuirks {
  /** The container exits with this code as soon as it starts (an image without a working runtime). */
  exitsWith?: number;
}

export interface MemoryDriverOptions {
  /** The images present: names (each runs a well-behaved fake Ship) or name → FakeImage. */
  images?: string[] | Record<string, FakeImage>;
  /** Extra labels put on, and required by every listing of, every object (as the Docker driver's). */
  extraLabels?: Record<string, string>;
  /** How fake Ships' `time.sleep` and `sleep` wait (default: real time), e.g. until a test lets them go. */
  sleep?: (seconds: number, signal: AbortSignal) => Promise<void>;
}

/** A start held by `holdStarts`. */
export interface StartHold {
  /** Resolves with the id of the first container whose start is waiting. */
  readonly reached: Promise<string>;
  /** Lets every held start go on; later starts are not held. */
  release(): void;
}

interface Container {
  id: string;
  name: string;
  spec: ContainerSpec;
  labels: Record<string, string>;
  state: "created" | "running" | "exited";
  exitCode: number;
  createdAt: number;
  log: string[];
  ship: FakeShip | null;
}

const MANAGED_BY = "managed-by";
/** Ship's upload cap when the container's env sets none (SHIP_MAX_UPLOAD_BYTES). */
const DEFAULT_MAX_UPLOAD = 1024 * 1024 * 1024;

export class MemoryDriver implements Driver {
  readonly name = "memory";
  /** The engine's volumes with their files: what fake Ships write and the data plane reads. */
  readonly volumes = new MemoryVolumeFiles();
  /** The workspace data plane: `volumes`, answering driver_unavailable while the engine is unreachable. */
  readonly volumeFiles: VolumeFiles;
  private readonly images: Map<string, FakeImage>;
  private readonly extra: Record<string, string>;
  private readonly sleep: MemoryDriverOptions["sleep"];
  private readonly containers = new Map<string, Container>();
  /** Ports freed by an engine restart, handed to the next containers started. */
  private readonly freedPorts: number[] = [];
  private reachable = true;
  private hold: { gate: Promise<void>; open(): void; reached(id: string): void } | null = null;

  constructor(opts: MemoryDriverOptions = {}) {
    const images = opts.images ?? [];
    this.images = new Map(Array.isArray(images) ? images.map((i) => [i, {}]) : Object.entries(images));
    this.extra = opts.extraLabels ?? {};
    this.sleep = opts.sleep;
    this.volumeFiles = checkedFiles(this.volumes, () => this.check("volume files"));
  }

  async ping(): Promise<void> {
    this.check("ping");
  }

  async imageExists(image: string): Promise<boolean> {
    return (await this.imageId(image)) !== null;
  }

  async imageId(image: string): Promise<string | null> {
    this.check(`inspect image ${image}`);
    return this.images.has(image) ? `memory:${image}` : null;
  }

  /** The fake engine runs every container the same way: it offers runc only. */
  async runtimes(): Promise<string[]> {
    this.check("engine info");
    return ["runc"];
  }

  /** The fake engine runs a spec as it is: its recipe is the shape itself. */
  containerRecipe(shape: ContainerShape): unknown {
    return shape;
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    this.check(`create container ${spec.name}`);
    if (spec.runtime && spec.runtime !== "runc") {
      // As Docker answers a runtime it has not registered (see DockerDriver.createContainer).
      throw new BayError("internal_error", `OCI runtime "${spec.runtime}" of the profile is not configured on the Docker engine`, {
        details: { runtime: spec.runtime },
      });
    }
    if (!this.images.has(spec.image)) {
      throw new BayError("internal_error", `image not found: ${spec.image}`, { details: { image: spec.image, reason: "image_missing" } });
    }
    if ([...this.containers.values()].some((c) => c.name === spec.name)) {
      throw new BayError("conflict", "the container engine refused a conflicting change", {
        internal: { operation: `create container ${spec.name}`, engine_message: `the container name "${spec.name}" is already in use` },
      });
    }
    // Mounting a volume that does not exist makes one, with the mount's labels if it names any (as Docker does).
    this.volumes.createVolume(spec.volumeName, spec.volumeLabels ?? null);
    const id = (crypto.randomUUID() + crypto.randomUUID()).replaceAll("-", "");
    const c: Container = {
      id,
      name: spec.name,
      spec,
      labels: this.stamp(spec.labels),
      state: "created",
      exitCode: 0,
      createdAt: Date.now(),
      log: [],
      ship: null,
    };
    this.containers.set(id, c);
    return id;
  }

  async startContainer(id: string, _runtimePort: number, stdinLine?: string): Promise<RuntimeEndpoint> {
    const op = `start container ${id}`;
    this.check(op);
    let c = this.require(id, op);
    if (c.ship) return { baseUrl: `http://127.0.0.1:${c.ship.port}` };
    if (this.hold) {
      this.hold.reached(id);
      await this.hold.gate;
      this.check(op);
      c = this.require(id, op); // it may have been removed while it waited
    }
    this.run(c, stdinLine);
    if (!c.ship) {
      throw new BayError("internal_error", "the sandbox container stopped right after start", {
        details: { exit_code: c.exitCode, oom_killed: false },
        internal: { container_id: id },
      });
    }
    return { baseUrl: `http://127.0.0.1:${c.ship.port}` };
  }

  async stopContainer(id: string, _timeoutSeconds?: number): Promise<void> {
    this.check(`stop container ${id}`);
    const c = this.containers.get(id);
    // Ship exits 0 on SIGTERM.
    if (c?.ship) this.exit(c, 0, "[ship] stopped");
  }

  async destroyContainer(id: string): Promise<void> {
    this.check(`remove container ${id}`);
    const c = this.containers.get(id);
    if (!c) return;
    c.ship?.kill();
    this.containers.delete(id);
  }

  async containerStatus(id: string): Promise<ContainerInfo> {
    this.check(`inspect container ${id}`);
    const c = this.containers.get(id);
    if (!c) return { id, name: "", state: "missing", labels: {} };
    return { id, name: c.name, state: c.state, labels: { ...c.labels }, exitCode: c.exitCode, oomKilled: false };
  }

  /**
   * A fixed use for a running container (nothing is measured here): 1 % CPU (its CPU
   * time grows by 1 % of the time since it was created), 1/16 of its memory, 1/64 page cache.
   */
  async containerStats(id: string): Promise<ContainerStats | null> {
    this.check(`read stats of container ${id}`);
    const c = this.containers.get(id);
    if (c?.state !== "running") return null;
    const limit = c.spec.memoryMb * 1024 * 1024;
    const cpuTotalNs = Math.max(0, Date.now() - c.createdAt) * 10_000; // 1 % of the milliseconds, in ns
    return { cpuUsedPct: 1, memoryUsedBytes: limit / 16, memoryLimitBytes: limit, memoryCacheBytes: limit / 64, cpuTotalNs };
  }

  async containerLogs(id: string, tail = 200): Promise<string> {
    const op = `read logs of container ${id}`;
    this.check(op);
    const lines = this.require(id, op).log.slice(-tail);
    return lines.map((l) => `${l}\n`).join("");
  }

  async listContainers(labels: Partial<ResourceLabels>): Promise<ContainerInfo[]> {
    this.check("list containers");
    return [...this.containers.values()]
      .filter((c) => this.matches(c.labels, labels))
      .map((c) => ({ id: c.id, name: c.name, state: c.state, labels: { ...c.labels }, createdAt: c.createdAt }));
  }

  async createVolume(name: string, labels: VolumeLabels): Promise<void> {
    this.check(`create volume ${name}`);
    this.volumes.createVolume(name, labels);
  }

  async removeVolume(name: string): Promise<void> {
    this.check(`remove volume ${name}`);
    // Docker refuses while any container, running or not, still mounts it.
    if ([...this.containers.values()].some((c) => c.spec.volumeName === name)) {
      throw new BayError("conflict", "the workspace volume is still in use", { internal: { volume: name } });
    }
    this.volumes.dropVolume(name);
  }

  async listVolumes(labels: Partial<ResourceLabels>): Promise<VolumeInfo[]> {
    this.check("list volumes");
    return this.volumes
      .existingVolumes()
      .flatMap((v) => (v.labels ? [{ name: v.name, labels: this.stamp(v.labels) }] : []))
      .filter((v) => this.matches(v.labels, labels));
  }

  /** Releases this client; the engine and its containers stay up (see `shutdown`). */
  async close(): Promise<void> {}

  // --- test hooks ------------------------------------------------------------

  /** The container's runtime dies at once (as `docker kill`): connections are cut, its volume stays. */
  crash(id: string, exitCode = 137): void {
    const c = this.containers.get(id);
    if (!c?.ship) throw new Error(`memory driver: container ${id} is not running`);
    this.exit(c, exitCode, "[ship] killed");
  }

  /**
   * The engine restarted: every running container stopped, and the ports they
   * published go to the next containers started, so an endpoint stored before
   * may now reach another session's Ship.
   */
  restartEngine(): void {
    for (const c of this.containers.values()) {
      if (!c.ship) continue;
      this.freedPorts.push(c.ship.port);
      this.exit(c, 0, "[ship] stopped by an engine restart");
    }
  }

  /** Every volume's name, those without labels too (which listVolumes, like Bay's reconcile, never sees). */
  volumeNames(): string[] {
    return this.volumes.existingVolumes().map((v) => v.name);
  }

  /** Every engine call fails with driver_unavailable (running fake Ships keep answering) until `makeReachable`. */
  makeUnreachable(): void {
    this.reachable = false;
  }

  makeReachable(): void {
    this.reachable = true;
  }

  /** Makes every start wait (after its checks, before the runtime runs) until released. */
  holdStarts(): StartHold {
    let open!: () => void;
    let reached!: (id: string) => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const first = new Promise<string>((resolve) => (reached = resolve));
    this.hold = { gate, open, reached };
    return {
      reached: first,
      release: () => {
        this.hold = null;
        open();
      },
    };
  }

  /** The spec a container was created with (what the domain asked for), or undefined. */
  specOf(id: string): ContainerSpec | undefined {
    return this.containers.get(id)?.spec;
  }

  /** Stops every fake Ship and forgets every container; volumes stay. */
  shutdown(): void {
    this.hold?.open();
    this.hold = null;
    for (const c of this.containers.values()) c.ship?.kill();
    this.containers.clear();
  }

  // --- internals ---------------------------------------------------------------

  /** What the container's process does when it starts: a fake Ship, or an exit. */
  private run(c: Container, stdinLine: string | undefined): void {
    c.state = "running";
    const image = this.images.get(c.spec.image) ?? {};
    if (image.exitsWith !== undefined) {
      this.exit(c, image.exitsWith, "no ship in this image");
      return;
    }
    // As Ship's main.ts: no credentials, no service.
    const credentials =
      c.spec.env[CREDENTIALS_ENV] === "stdin"
        ? parseCredentials(c.spec.credentialsOnStdin ? stdinLine : undefined)
        : `no session credentials (Bay sets ${CREDENTIALS_ENV}=stdin and writes them on stdin)`;
    if (typeof credentials === "string") {
      this.exit(c, 2, `[ship] refusing to start: ${credentials}`);
      return;
    }
    const opts = {
      credentials,
      files: this.volumes,
      volume: { name: c.spec.volumeName, labels: { ...c.spec.labels, session_id: undefined } },
      quirks: image,
      maxUploadBytes: Number(c.spec.env.SHIP_MAX_UPLOAD_BYTES) || DEFAULT_MAX_UPLOAD,
      ...(c.spec.env.SHIP_MAX_CONTEXTS ? { maxContexts: Number(c.spec.env.SHIP_MAX_CONTEXTS) } : {}),
      log: (line: string) => c.log.push(line),
      ...(this.sleep ? { sleep: this.sleep } : {}),
    };
    const port = this.freedPorts.shift();
    try {
      c.ship = FakeShip.start(opts, port ?? 0);
    } catch {
      c.ship = FakeShip.start(opts, 0); // the freed port was taken meanwhile
    }
    c.exitCode = 0;
  }

  private exit(c: Container, code: number, line: string): void {
    c.ship?.kill();
    c.ship = null;
    c.state = "exited";
    c.exitCode = code;
    c.log.push(line);
  }

  private require(id: string, operation: string): Container {
    const c = this.containers.get(id);
    if (!c) throw new BayError("not_found", "the container engine has no such object", { internal: { operation, engine_status: 404 } });
    return c;
  }

  private check(operation: string): void {
    if (this.reachable) return;
    throw new BayError("driver_unavailable", "the container engine is unreachable", {
      retryAfter: 5,
      internal: {
        operation,
        engine_message: "the in-memory engine was made unreachable",
        engine_status: null,
        engine_code: "ECONNREFUSED",
      },
    });
  }

  /** Labels as stored: the given ones (unset ones dropped), the extras, and managed-by. */
  private stamp(labels: Partial<ResourceLabels> | VolumeLabels): Record<string, string> {
    const out: Record<string, string> = { ...this.extra };
    for (const [k, v] of Object.entries(labels)) if (v !== undefined) out[k] = v;
    out[MANAGED_BY] = "bay";
    return out;
  }

  private matches(stored: Record<string, string>, filter: Partial<ResourceLabels>): boolean {
    return Object.entries(this.stamp(filter)).every(([k, v]) => stored[k] === v);
  }
}
