/**
 * Changes a Docker volume the way user code in a sandbox could (symlinks, FIFOs,
 * thousands of files): a shell script run as uid 1000 in a throwaway container of
 * the Ship image mounting the volume at /workspace, removed afterwards. It carries
 * the given Docker labels, so a test's cleanup by label finds it should it linger.
 */
import type Docker from "dockerode";
import { SHIP_IMAGE } from "./images.ts";

export async function shellOnVolume(
  docker: Docker,
  volume: string,
  script: string,
  labels: Record<string, string>,
): Promise<{ exitCode: number; output: string }> {
  const container = await docker.createContainer({
    Image: SHIP_IMAGE,
    Entrypoint: ["sh", "-c", script],
    User: "1000:1000",
    WorkingDir: "/workspace",
    Labels: labels,
    NetworkDisabled: true,
    HostConfig: { NetworkMode: "none", Mounts: [{ Type: "volume", Source: volume, Target: "/workspace" }] },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    return { exitCode: StatusCode, output: logs.toString("utf8") };
  } finally {
    await container.remove({ force: true }).catch(() => {});
  }
}
