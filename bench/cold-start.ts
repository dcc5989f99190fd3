/**
 * Cold start: create a sandbox and get the first `1+1` through Bay, versus a bare
 * `docker run` of the same image (port published on 127.0.0.1) until its /health
 * answers, and until its first exec answers. Runs alternate, side by side.
 */
import { STDIN_CREDENTIALS_OPTIONS, startWithStdinLine } from "../src/bay/drivers/docker/stdin-credentials.ts";
import { SHIP_IMAGE } from "../tests/e2e/support/e2e.ts";
import { createSandbox, deleteSandbox, expectTwo, type BenchContext } from "./context.ts";
import { median, ms, ratio, time, type Row } from "./stats.ts";

async function bayColdStart(ctx: BenchContext): Promise<number> {
  let id = "";
  const t = await time(async () => {
    id = await createSandbox(ctx);
    const res = await fetch(`${ctx.bay.url}/v1/sandboxes/${id}/python/exec`, {
      method: "POST",
      headers: { "x-owner": ctx.owner, "content-type": "application/json" },
      body: JSON.stringify({ code: "1+1" }),
    });
    expectTwo((await res.json()) as object, "bay cold start");
  });
  await deleteSandbox(ctx, id);
  return t;
}

async function bareDockerRun(ctx: BenchContext): Promise<{ health: number; exec: number }> {
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
    // Started as Bay starts a session: the credentials on stdin.
    await startWithStdinLine(ctx.docker, c.id, JSON.stringify({ session_id: "sess-bench", secret }));
    const info = await c.inspect();
    const port = info.NetworkSettings.Ports["8123/tcp"]?.find((b) => b.HostIp === "127.0.0.1")?.HostPort;
    if (!port) throw new Error("bare container publishes no port");
    const base = `http://127.0.0.1:${port}`;
    for (;;) {
      try {
        const r = await fetch(`${base}/health`, { signal: AbortSignal.timeout(1000) });
        if (r.status === 200) break;
      } catch {
        // not listening yet
      }
      if (performance.now() - t0 > 30_000) throw new Error("bare Ship did not answer /health in 30 s");
      await Bun.sleep(10);
    }
    const health = performance.now() - t0;
    const r = await fetch(`${base}/ipython/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
      body: JSON.stringify({ code: "1+1" }),
    });
    expectTwo((await r.json()) as object, "bare first exec");
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
    if (i % 2 === 0) {
      bay.push(await bayColdStart(ctx));
      const b = await bareDockerRun(ctx);
      health.push(b.health);
      exec.push(b.exec);
    } else {
      const b = await bareDockerRun(ctx);
      health.push(b.health);
      exec.push(b.exec);
      bay.push(await bayColdStart(ctx));
    }
  }
  const mb = median(bay);
  return [
    {
      bench: "cold start",
      measure: "median, vs docker run → /health",
      runs: ctx.runs,
      bay: ms(mb),
      direct: ms(median(health)),
      ratio: ratio(mb, median(health)),
    },
    {
      bench: "cold start",
      measure: "median, vs docker run → first exec",
      runs: ctx.runs,
      bay: ms(mb),
      direct: ms(median(exec)),
      ratio: ratio(mb, median(exec)),
    },
  ];
}
