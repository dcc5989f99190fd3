import type { ContainerCreateOptions, MountSettings } from "dockerode";
import type { ContainerShape, ContainerSpec, ResourceLabels } from "../driver.ts";
import type { ResolvedConnectMode } from "./connect-mode.ts";
import type { LabelCodec } from "./labels.ts";
import { SOCKET_MOUNT, SOCKET_NAME } from "./runtime-socket.ts";
import { STDIN_CREDENTIALS_OPTIONS } from "./stdin-credentials.ts";

/** Where the workspace volume is mounted in every Bay container. */
export const WORKSPACE_MOUNT = "/workspace";

/** Used when a read-only rootfs is asked for without a /tmp size: Ship needs a writable /tmp. */
const DEFAULT_TMPFS_MB = 64;

const MIB = 1024 * 1024;

export interface ContainerConfigContext {
  mode: ResolvedConnectMode;
  /** Docker network the container joins; undefined = Docker's default bridge. */
  network: string | undefined;
  /** Upstream resolvers of Docker's embedded DNS for this container; empty or undefined = Docker's choice. */
  dns?: string[] | undefined;
  defaultPidsLimit: number;
  labels: LabelCodec;
  /**
   * unix_socket mode: the host directory Ship binds its socket in (runtime-socket.ts).
   * Absent in that mode (a runtime that cannot serve a socket to the host): a loopback port instead.
   */
  socketDir?: string;
}

/**
 * Translates a `ContainerSpec` into a Docker create request. Pure, so the hardening
 * (no capabilities, no new privileges, loopback-only ports) is visible in one place.
 */
export function containerCreateOptions(spec: ContainerSpec, ctx: ContainerConfigContext): ContainerCreateOptions {
  const port = `${spec.runtimePort}/tcp`;
  const network = ctx.network;
  const memory = Math.round(spec.memoryMb * MIB);
  const tmpfsMb = spec.tmpfsMb ?? (spec.readOnlyRootfs ? DEFAULT_TMPFS_MB : undefined);

  return {
    name: spec.name,
    Image: spec.image,
    Env: [
      ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      ...(ctx.socketDir ? [`SHIP_SOCKET=${SOCKET_MOUNT}/${SOCKET_NAME}`] : []),
    ],
    Labels: ctx.labels.encode(spec.labels),
    ExposedPorts: { [port]: {} },
    ...(spec.credentialsOnStdin ? STDIN_CREDENTIALS_OPTIONS : {}),
    HostConfig: {
      NanoCpus: Math.round(spec.cpus * 1e9),
      Memory: memory,
      // Equal to Memory: the container gets no swap on top of its limit.
      MemorySwap: memory,
      PidsLimit: spec.pidsLimit > 0 ? spec.pidsLimit : ctx.defaultPidsLimit,
      Mounts: [
        {
          Type: "volume" as const,
          Source: spec.volumeName,
          Target: WORKSPACE_MOUNT,
          // dockerode's type wants NoCopy and DriverConfig too; the engine does not.
          ...(spec.volumeLabels
            ? { VolumeOptions: { Labels: ctx.labels.encode(spec.volumeLabels) } as MountSettings["VolumeOptions"] }
            : {}),
        },
        ...(ctx.socketDir ? [{ Type: "bind" as const, Source: ctx.socketDir, Target: SOCKET_MOUNT }] : []),
      ],
      SecurityOpt: ["no-new-privileges"],
      // Ship runs as an unprivileged user, so it needs no capability at all.
      CapDrop: ["ALL"],
      ReadonlyRootfs: spec.readOnlyRootfs ?? false,
      ...(tmpfsMb ? { Tmpfs: { "/tmp": `rw,nosuid,nodev,size=${tmpfsMb}m,mode=1777` } } : {}),
      ...(spec.runtime ? { Runtime: spec.runtime } : {}),
      ...(network ? { NetworkMode: network } : {}),
      ...(ctx.dns?.length ? { Dns: ctx.dns } : {}),
      // Loopback only with an engine-chosen port: nothing outside the host reaches a Ship.
      ...(publishesPort(ctx) ? { PortBindings: { [port]: [{ HostIp: "127.0.0.1", HostPort: "" }] } } : {}),
      RestartPolicy: { Name: "no" },
      // Rotated: user code can write to PID 1's stdout forever, and must not fill the host's disk.
      ...(spec.logs
        ? { LogConfig: { Type: "json-file", Config: { "max-size": `${spec.logs.maxSizeMb}m`, "max-file": String(spec.logs.maxFiles) } } }
        : {}),
    },
  };
}

/** host_port mode, or unix_socket mode for a runtime that cannot serve a socket: the runtime's port on 127.0.0.1. */
const publishesPort = (ctx: ContainerConfigContext): boolean => ctx.mode === "host_port" || (ctx.mode === "unix_socket" && !ctx.socketDir);

/**
 * The network a container joins when the driver prepares none for it: the operator's network
 * the profile names, else the driver's shared one in container_network mode, else the engine's
 * default (undefined). A policy network (`egress`, `none`) is the egress manager's (egress.ts).
 */
export function unmanagedNetwork(
  choice: Exclude<ContainerSpec["network"], string>,
  mode: ResolvedConnectMode,
  shared: string | undefined,
): string | undefined {
  if (choice) return choice.docker_network;
  return mode === "container_network" ? shared : undefined;
}

export interface RecipeContext extends Pick<ContainerConfigContext, "mode" | "defaultPidsLimit" | "labels"> {
  /** The driver's shared network (container_network mode). */
  network: string | undefined;
  /** unix_socket mode and a runtime that serves a socket there. */
  servesSocket: boolean;
  /** The engine the driver talks to (null: the default socket). */
  engine: string | null;
}

/**
 * What a container of `shape` is created with (its engine request, how it is attached and
 * reached), less what each container has of its own; no engine call. Equal for equal
 * configurations: the warm pool's fingerprints (src/bay/domain/pool-fingerprint.ts).
 */
export function containerRecipe(shape: ContainerShape, ctx: RecipeContext): unknown {
  const spec: ContainerSpec = { ...shape, name: "", labels: {} as ResourceLabels, volumeName: "" };
  const create = containerCreateOptions(spec, {
    mode: ctx.mode,
    // The attachment as chosen, not prepared (no engine call): a policy network is named by its policy below.
    network: typeof spec.network === "string" ? undefined : unmanagedNetwork(spec.network, ctx.mode, ctx.network),
    defaultPidsLimit: ctx.defaultPidsLimit,
    labels: ctx.labels,
    ...(ctx.servesSocket ? { socketDir: "<socket>" } : {}),
  });
  // The environment is a set (one value per name): its order is no difference.
  create.Env = [...(create.Env ?? [])].sort();
  return { create, network: spec.network ?? null, socket: ctx.servesSocket, engine: ctx.engine };
}
