/**
 * Measures a fresh bay-ship container: start-to-ready time (docker run → /health
 * 200, and → kernel "ready") and idle memory (docker stats, cgroup usage, RSS per
 * process). Not a test: timings are noisy. Run: bun tests/ship/measure-ship.ts [image] [runs]
 */
import { SHIP_IMAGE } from "../support/images.ts";
import { startShip } from "./support/container.ts";

const image = Bun.argv[2] ?? SHIP_IMAGE;
const runs = Number(Bun.argv[3] ?? 5);

function sh(cmd: string[]): string {
  return Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" }).stdout.toString().trim();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const healthMs: number[] = [];
const kernelMs: number[] = [];
const bareMs: number[] = [];
const memory: string[] = [];
for (let i = 0; i < runs; i++) {
  const b0 = performance.now();
  sh(["docker", "run", "--rm", "--entrypoint", "true", image]);
  bareMs.push(performance.now() - b0);

  const t0 = performance.now();
  // Started as Bay starts a session: credentials on stdin (startShip does that).
  const ship = await startShip(image);
  const id = ship.id;
  const port = new URL(ship.baseUrl).port;
  let healthy = 0;
  for (;;) {
    const body = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => (r.ok ? r.json() : null),
      () => null,
    );
    if (body && !healthy) healthy = performance.now() - t0;
    if ((body as { kernel?: string } | null)?.kernel === "ready") break;
    await Bun.sleep(5);
  }
  healthMs.push(healthy);
  kernelMs.push(performance.now() - t0);
  await Bun.sleep(3000);
  const stats = sh(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", id]);
  const cgroup = Number(sh(["docker", "exec", id, "cat", "/sys/fs/cgroup/memory/memory.usage_in_bytes"]));
  const rss = sh(["docker", "exec", id, "ps", "-eo", "rss=,comm="]).replace(/\s+/g, " ");
  memory.push(`stats=${stats.split(" /")[0]} cgroup=${(cgroup / 2 ** 20).toFixed(1)}MiB rss(KiB)=[${rss}]`);
  sh(["docker", "rm", "-f", id]);
}
console.log(`image ${image}, ${runs} runs`);
console.log(`bare docker run (true):        median ${median(bareMs).toFixed(0)} ms  [${bareMs.map((x) => x.toFixed(0)).join(", ")}]`);
console.log(`docker run → /health 200:      median ${median(healthMs).toFixed(0)} ms  [${healthMs.map((x) => x.toFixed(0)).join(", ")}]`);
console.log(`docker run → kernel ready:     median ${median(kernelMs).toFixed(0)} ms  [${kernelMs.map((x) => x.toFixed(0)).join(", ")}]`);
for (const m of memory) console.log(`idle memory: ${m}`);
