/**
 * The base image of Ship's images, in the documented order: an explicit one
 * (--base / BASE_IMAGE), debian:bookworm-slim if present, the local
 * bay-base:bookworm, a pull of debian:bookworm-slim, and last a
 * bay-base:bookworm made with debootstrap from Debian's archive (no registry
 * needed). Everything goes through the engine API, so it works from the
 * compiled binary without the docker CLI.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type Docker from "dockerode";
import { errorMessage } from "../logger.ts";

export const DEBIAN_SLIM = "debian:bookworm-slim";
export const LOCAL_BASE = "bay-base:bookworm";
const PULL_TIMEOUT_MS = 60_000;

/** The image id of `ref`, or null when it is not present. */
export async function imageId(docker: Docker, ref: string): Promise<string | null> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch {
    return null;
  }
}

/** Follows an engine progress stream to its end; rejects on an `error` message. */
export function followProgress(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onEvent: (e: ProgressEvent) => void = () => {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (e: ProgressEvent) => {
        onEvent(e);
        if (e.error) reject(new Error(e.error));
      },
    );
  });
}

/** One message of the engine's JSON progress stream (build, pull, import). */
export interface ProgressEvent {
  stream?: string;
  status?: string;
  progress?: string;
  error?: string;
  aux?: { ID?: string };
}

async function pull(docker: Docker, ref: string): Promise<boolean> {
  const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), PULL_TIMEOUT_MS).unref?.());
  const pulled = docker
    .pull(ref)
    .then((stream: NodeJS.ReadableStream) => followProgress(docker, stream))
    .then(
      () => true,
      () => false,
    );
  return Promise.race([pulled, timeout]);
}

/** debootstrap bookworm (minbase) into a temp dir and import it as bay-base:bookworm. */
async function debootstrap(docker: Docker, log: (line: string) => void): Promise<void> {
  if (!Bun.which("debootstrap")) {
    throw new Error(
      `no base image: ${DEBIAN_SLIM} is not present and cannot be pulled, and debootstrap is missing to make ${LOCAL_BASE}. ` +
        "Fix: `apt-get install debootstrap` (as root) and run again, or pass --base IMAGE (any Debian bookworm image).",
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "bay-rootfs-"));
  try {
    log(`debootstrap bookworm into ${dir} (a minute or two)`);
    const boot = Bun.spawn(["debootstrap", "--variant=minbase", "bookworm", dir, "http://deb.debian.org/debian"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(boot.stdout).text(), new Response(boot.stderr).text(), boot.exited]);
    if (code !== 0) throw new Error(`debootstrap failed (exit ${code}):\n${(out + err).split("\n").slice(-15).join("\n")}`);
    log(`importing ${LOCAL_BASE}`);
    const tar = Bun.spawn(["tar", "-C", dir, "-c", "."], { stdout: "pipe", stderr: "ignore" });
    const [repo, tag] = LOCAL_BASE.split(":") as [string, string];
    const stream = await docker.importImage(Readable.fromWeb(tar.stdout as never), { repo, tag });
    await followProgress(docker, stream);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Picks (or makes) the base image; returns its reference. */
export async function resolveBaseImage(docker: Docker, log: (line: string) => void, wanted?: string): Promise<string> {
  if (wanted) {
    if (!(await imageId(docker, wanted)) && !(await pull(docker, wanted))) {
      throw new Error(`base image ${wanted} is not present and could not be pulled`);
    }
    return wanted;
  }
  if (await imageId(docker, DEBIAN_SLIM)) return DEBIAN_SLIM;
  if (await imageId(docker, LOCAL_BASE)) return LOCAL_BASE;
  log(`pulling ${DEBIAN_SLIM}`);
  if (await pull(docker, DEBIAN_SLIM)) return DEBIAN_SLIM;
  log("no registry reachable; making a local base image with debootstrap");
  try {
    await debootstrap(docker, log);
  } catch (e) {
    throw new Error(errorMessage(e));
  }
  return LOCAL_BASE;
}
