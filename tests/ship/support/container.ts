/** Starts a Ship image with `docker run` for tests and removes it afterwards. */
export interface ShipContainer {
  id: string;
  baseUrl: string;
  remove(): Promise<void>;
}

function docker(args: string[]): { code: number; out: string; err: string } {
  const res = Bun.spawnSync(["docker", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: res.exitCode ?? -1, out: res.stdout.toString().trim(), err: res.stderr.toString().trim() };
}

/** Fails with a clear message when Docker or the image is missing (never skips). */
export function requireImage(image: string): void {
  const info = docker(["info", "--format", "{{.ServerVersion}}"]);
  if (info.code !== 0) throw new Error(`Docker is not reachable (docker info: ${info.err}). Start dockerd first.`);
  const inspect = docker(["image", "inspect", image]);
  if (inspect.code !== 0) throw new Error(`image ${image} is missing: run \`bun run image:build\` first.`);
}

/** Runs the image on a random loopback port and waits for /health to answer 200. */
export async function startShip(image: string, env: Record<string, string> = {}): Promise<ShipContainer> {
  requireImage(image);
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  const run = docker(["run", "-d", "--label", "bay.test=ship", "-p", "127.0.0.1::8123", "--pids-limit", "512", ...envArgs, image]);
  if (run.code !== 0) throw new Error(`docker run ${image} failed: ${run.err}`);
  const id = run.out;
  const remove = async () => void docker(["rm", "-f", "-v", id]);
  try {
    const port = docker(["port", id, "8123/tcp"]).out.split("\n")[0]?.split(":").pop();
    if (!port) throw new Error(`no published port for ${id}`);
    const baseUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${baseUrl}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`ship in ${image} not healthy after 30s; logs:\n${docker(["logs", id]).err}`);
      await Bun.sleep(50);
    }
    return { id, baseUrl, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
