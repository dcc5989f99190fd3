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

/** /health requests per second for `ms` milliseconds, one client in a loop. */
async function healthRate(url: string, ms = 2000): Promise<number> {
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) {
    const r = await fetch(`${url}/health`);
    await r.text();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

/**
 * `baseline`: a Bay from another checkout (BENCH_BASELINE_ROOT), measured by
 * the same client in the same alternating rounds.
 */
export async function controlPlane(ctx: BenchContext, rounds = 3, seconds = 3, baseline?: BenchContext): Promise<Row[]> {
  const targets = [ctx, ...(baseline ? [baseline] : [])];
  const made: Array<{ ctx: BenchContext; id: string; url: string; headers: string[]; rps: number[] }> = [];
  let bare: { url: string; stop(): void } | null = null;
  try {
    for (const t of targets) {
      const { id } = await createSandbox(t);
      const headers = Object.entries(t.auth).map(([k, v]) => `${k}: ${v}`);
      made.push({ ctx: t, id, url: `${t.bay.url}/v1/sandboxes/${id}`, headers, rps: [] });
    }
    const body = await (await fetch(made[0]!.url, { headers: ctx.auth })).text();
    bare = await bareServer(body);
    const bareSide = { url: `${bare.url}/v1/sandboxes/x`, headers: made[0]!.headers, rps: [] as number[] };
    const sides = [...made, bareSide];
    for (const s of sides) await load(s.url, s.headers, 1);
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) s.rps.push(await load(s.url, s.headers, seconds));
    }
    const d = median(bareSide.rps);
    const out: Row[] = made.map((m, i) => {
      const b = median(m.rps);
      return {
        bench: `GET /v1/sandboxes/{id} (API key), 32 connections, vs bare Bun.serve${baseline ? (i === 0 ? " (this build)" : " (baseline)") : ""}`,
        measure: `req/s, median of ${rounds}`,
        runs: rounds,
        bay: `${b.toFixed(0)} req/s`,
        direct: `${d.toFixed(0)} req/s`,
        ratio: `${((b / d) * 100).toFixed(0)} % of bare`,
      };
    });
    for (const [i, m] of made.entries()) {
      const rate = await healthRate(m.ctx.bay.url);
      out.push({
        bench: `GET /health, one client in a loop${baseline ? (i === 0 ? " (this build)" : " (baseline)") : ""}`,
        measure: "req/s",
        runs: 1,
        bay: `${rate.toFixed(0)} req/s`,
        direct: "-",
        ratio: "-",
      });
    }
    return out;
  } finally {
    bare?.stop();
    for (const m of made) await deleteSandbox(m.ctx, m.id);
  }
}
