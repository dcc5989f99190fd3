/** Starts a Ship image for tests (as Bay does: credentials on stdin) and removes it afterwards. */
import Docker from "dockerode";
import type { ShipCredentials } from "../../../src/protocol/ship/index.ts";
import { STDIN_CREDENTIALS_OPTIONS, startWithStdinLine } from "../../../src/bay/drivers/docker/stdin-credentials.ts";
import { testCredentials } from "./caller.ts";

export interface ShipContainer {
  id: string;
  baseUrl: string;
  credentials: ShipCredentials;
  remove(): Promise<void>;
}

const docker = new Docker({ socketPath: "/var/run/docker.sock" });

function dockerCli(args: string[]): { code: number; out: string; err: string } {
  const res = Bun.spawnSync(["docker", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: res.exitCode ?? -1, out: res.stdout.toString().trim(), err: res.stderr.toString().trim() };
}

/** Fails with a clear message when Docker or the image is missing (never skips). */
export function requireImage(image: string): void {
  const info = dockerCli(["info", "--format", "{{.ServerVersion}}"]);
  if (info.code !== 0) throw new Error(`Docker is not reachable (docker info: ${info.err}). Start dockerd first.`);
  const inspect = dockerCli(["image", "inspect", image]);
  if (inspect.code !== 0) throw new Error(`image ${image} is missing: run \`bun run image:build\` first.`);
}

/** Runs the image on a random loopback port, hands it credentials, and waits for /health to answer 200. */
export async function startShip(image: string, env: Record<string, string> = {}, credentials = testCredentials()): Promise<ShipContainer> {
  requireImage(image);
  const created = await docker.createContainer({
    Image: image,
    Env: Object.entries({ SHIP_CREDENTIALS: "stdin", ...env }).map(([k, v]) => `${k}=${v}`),
    Labels: { "bay.test": "ship" },
    ExposedPorts: { "8123/tcp": {} },
    HostConfig: { PortBindings: { "8123/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] }, PidsLimit: 512 },
    ...STDIN_CREDENTIALS_OPTIONS,
  });
  const id = created.id;
  const remove = async () =>
    void (await docker
      .getContainer(id)
      .remove({ force: true, v: true })
      .catch(() => {}));
  try {
    await startWithStdinLine(docker, id, JSON.stringify(credentials));
    const info = await docker.getContainer(id).inspect();
    const port = info.NetworkSettings.Ports["8123/tcp"]?.[0]?.HostPort;
    if (!port) throw new Error(`no published port for ${id}`);
    const baseUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${baseUrl}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`ship in ${image} not healthy after 30s; logs:\n${dockerCli(["logs", id]).err}`);
      await Bun.sleep(50);
    }
    return { id, baseUrl, credentials, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
