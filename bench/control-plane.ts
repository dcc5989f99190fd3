/**
 * The control plane: GET /v1/sandboxes/{id} with an API key (the production
 * path: auth, rate limit, validation, one database read, the access log) versus
 * a bare `Bun.serve` answering the same JSON body, measured by the same load
 * client (bench/load-client.ts, its own process, 32 keep-alive connections) in
 * alternating rounds; and GET /health sequentially (what a scraper sees).
 */
import { join } from "node:path";
import { type BenchContext, createSandbox, deleteSandbox } from "./context.ts";
import { median, type Row } from "./stats.ts";

const CLIENT = join(import.meta.dir, "load-client.ts");

async function load(url: string, headers: string[], seconds: number): Promise<number> {
  const p = Bun.spawn(["bun", CLIENT, url, "32", String(seconds), ...headers], { stdout: "pipe", stderr: "inherit" });
  const out = JSON.parse(await new Response(p.stdout).text()) as { rps: number; non2xx: number; errors: number };
  if (out.non2xx > 0 || out.errors > 0) throw new Error(`load client: ${out.non2xx} non-2xx answers, ${out.errors} errors`);
  return out.rps;
}

/** A bare Bun.serve in its own process answering `body` to everything. */
async function bareServer(body: string): Promise<{ url: string; stop(): void }> {
  const script = `const b=${JSON.stringify(body)};const s=Bun.serve({hostname:"127.0.0.1",port:0,fetch:()=>new Response(b,{headers:{"content-type":"application/json"}})});console.log(s.port);`;
  const p = Bun.spawn(["bun", "-e", script], { stdout: "pipe" });
  const reader = p.stdout.getReader();
  const port = new TextDecoder().decode((await reader.read()).value).trim();
  return { url: `http://127.0.0.1:${port}`, stop: () => p.kill() };
}

export async function controlPlane(ctx: BenchContext, rounds = 3, seconds = 3): Promise<Row[]> {
  const { id } = await createSandbox(ctx);
  const path = `/v1/sandboxes/${id}`;
  const body = await (await fetch(`${ctx.bay.url}${path}`, { headers: ctx.auth })).text();
  const bare = await bareServer(body);
  const headers = Object.entries(ctx.auth).map(([k, v]) => `${k}: ${v}`);
  try {
    await load(`${ctx.bay.url}${path}`, headers, 1);
    await load(`${bare.url}${path}`, headers, 1);
    const bay: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < rounds; i++) {
      bay.push(await load(`${ctx.bay.url}${path}`, headers, seconds));
      direct.push(await load(`${bare.url}${path}`, headers, seconds));
    }
    const healthStart = performance.now();
    let n = 0;
    while (performance.now() - healthStart < 2000) {
      const r = await fetch(`${ctx.bay.url}/health`);
      await r.text();
      n++;
    }
    const healthRate = n / ((performance.now() - healthStart) / 1000);
    const b = median(bay);
    const d = median(direct);
    return [
      {
        bench: "GET /v1/sandboxes/{id} (API key), 32 connections, vs bare Bun.serve",
        measure: `req/s, median of ${rounds}`,
        runs: rounds,
        bay: `${b.toFixed(0)} req/s`,
        direct: `${d.toFixed(0)} req/s`,
        ratio: `${((b / d) * 100).toFixed(0)} % of bare`,
      },
      {
        bench: "GET /health, one client in a loop",
        measure: "req/s",
        runs: n,
        bay: `${healthRate.toFixed(0)} req/s`,
        direct: "-",
        ratio: "-",
      },
    ];
  } finally {
    bare.stop();
    await deleteSandbox(ctx, id);
  }
}
