/**
 * Cold start: create a sandbox of a profile without a pool and get its first
 * `1+1` through Bay, versus a bare `docker run` of the same image (credentials
 * on stdin as Bay gives them, port published on 127.0.0.1) until its /health
 * answers, and until its first exec answers. Runs alternate, side by side.
 */
import { STDIN_CREDENTIALS_OPTIONS, startWithStdinLine } from "../src/bay/drivers/docker/stdin-credentials.ts";
import { SHIP_IMAGE } from "../tests/e2e/support/e2e.ts";
import { bayExec, type BenchContext, COLD_PROFILE, createSandbox, deleteSandbox, directExec } from "./context.ts";
import { median, ms, ratio, type Row, time } from "./stats.ts";

async function bayColdStart(ctx: BenchContext): Promise<number> {
  let id = "";
  const t = await time(async () => {
    id = (await createSandbox(ctx, COLD_PROFILE)).id;
    await bayExec(ctx, id);
  });
  await deleteSandbox(ctx, id);
  return t;
}

/** `docker run` of the Ship image and its first exec, timed from the create. */
export async function bareDockerRun(ctx: BenchContext): Promise<{ health: number; exec: number }> {
  const t0 = performance.now();
  const c = await ctx.docker.createContainer({
    Image: SHIP_IMAGE,
    Env: ["SHIP_CREDENTIALS=stdin"],
    Labels: ctx.benchLabel,
    ExposedPorts: { "8123/tcp": {} },
    HostConfig: { PortBindings: { "8123/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
    ...STDIN_CREDENTIALS_OPTIONS,
  });
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  try {
    await startWithStdinLine(ctx.docker, c.id, JSON.stringify({ session_id: "sess-bench", secret }));
    const info = await c.inspect();
    const port = info.NetworkSettings.Ports["8123/tcp"]?.find((b) => b.HostIp === "127.0.0.1")?.HostPort;
    if (!port) throw new Error("bare container publishes no port");
    const endpoint = `http://127.0.0.1:${port}`;
    for (;;) {
      try {
        const r = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) break;
      } catch {
        // not listening yet
      }
      if (performance.now() - t0 > 60_000) throw new Error("bare Ship did not answer /health in 60 s");
      await Bun.sleep(10);
    }
    const health = performance.now() - t0;
    await directExec({ endpoint, secret });
    return { health, exec: performance.now() - t0 };
  } finally {
    await c.remove({ force: true, v: true }).catch(() => {});
  }
}

export async function coldStart(ctx: BenchContext): Promise<Row[]> {
  // One untimed round of each, so image layers and page cache are warm for both.
  await bayColdStart(ctx);
  await bareDockerRun(ctx);
  const bay: number[] = [];
  const health: number[] = [];
  const exec: number[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    // Alternate which side goes first, so drift on the shared machine hits both.
    const sides = [
      async () => bay.push(await bayColdStart(ctx)),
      async () => {
        const b = await bareDockerRun(ctx);
        health.push(b.health);
        exec.push(b.exec);
      },
    ];
    if (i % 2) sides.reverse();
    for (const side of sides) await side();
  }
  const mb = median(bay);
  return [
    {
      bench: "cold create → first 1+1, vs docker run → first exec",
      measure: "median",
      runs: ctx.runs,
      bay: ms(mb),
      direct: ms(median(exec)),
      ratio: ratio(mb, median(exec)),
    },
    {
      bench: "cold create → first 1+1, vs docker run → /health",
      measure: "median",
      runs: ctx.runs,
      bay: ms(mb),
      direct: ms(median(health)),
      ratio: ratio(mb, median(health)),
    },
  ];
}
