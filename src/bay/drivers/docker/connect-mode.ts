import { existsSync } from "node:fs";
import type { DockerOptions } from "dockerode";
import { BayError } from "../../errors.ts";

/** How Bay reaches the runtime inside a container. */
export type ConnectMode = "host_port" | "container_network" | "unix_socket" | "auto";
export type ResolvedConnectMode = Exclude<ConnectMode, "auto">;

/**
 * `auto` picks container_network only when Bay itself runs in a container (where
 * 127.0.0.1 is Bay's own loopback, not the host's) and a network to share exists.
 */
export function resolveConnectMode(
  mode: ConnectMode,
  network: string | undefined,
  insideContainer: () => boolean = () => existsSync("/.dockerenv"),
): ResolvedConnectMode {
  if (mode === "container_network" && !network) {
    throw new BayError("validation_error", "docker connect mode container_network needs a network name");
  }
  if (mode !== "auto") return mode;
  return network && insideContainer() ? "container_network" : "host_port";
}

/**
 * dockerode connection options from a DOCKER_HOST-style URL or a socket path.
 * Every field is set explicitly because docker-modem merges our options over its own
 * defaults read from the DOCKER_HOST env var, and a stray env `host` would win over
 * our `socketPath`.
 */
export function connectionOptions(host: string | undefined, socketPath: string | undefined): DockerOptions {
  const unset = { host: undefined, port: undefined, socketPath: undefined, protocol: undefined };
  if (!host) return { ...unset, socketPath: socketPath ?? "/var/run/docker.sock" };
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    throw new BayError("validation_error", `invalid docker host: ${host}`);
  }
  switch (url.protocol) {
    case "unix:":
      return { ...unset, socketPath: url.pathname };
    case "tcp:":
    case "http:":
      // Plain TCP only: TLS client certificates are not wired up (not needed on a local engine).
      return { ...unset, host: url.hostname, port: Number(url.port || 2375), protocol: "http" };
    default:
      throw new BayError("validation_error", `unsupported docker host scheme: ${url.protocol}`);
  }
}
