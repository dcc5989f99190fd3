/**
 * The cold path under load: 40 sandboxes (a profile without a pool) created and
 * given their first `1+1`, 8 at a time. Reports the first exec's p50/p95 and
 * where a start's time went, from Bay's own "session ready" log lines (engine
 * create, engine start, Ship's boot until /health and /meta answer) and the rest
 * of the first call (the kernel becoming ready, then the exec). Then, with the
 * 40 sandboxes idle, the memory each takes (its cgroup's usage less reclaimable
 * page cache, as `docker stats` shows it), and for three of them the private
 * memory of Ship and of the Python kernel.
 */
import { readFileSync } from "node:fs";
import { bayExec, type BenchContext, COLD_PROFILE, createSandbox, deleteSandbox } from "./context.ts";
import { median, ms, p95, type Row } from "./stats.ts";

const MiB = 1024 * 1024;

interface ReadyLine {
  sandbox_id: string;
  ms: number;
  create_ms?: number;
  start_ms?: number;
  ship_ms?: number;
}

function readyLines(logFile: string, ids: Set<string>): ReadyLine[] {
  const out: ReadyLine[] = [];
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (!line.includes('"session ready"')) continue;
    try {
      const rec = JSON.parse(line) as ReadyLine & { msg: string };
      if (rec.msg === "session ready" && ids.has(rec.sandbox_id)) out.push(rec);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

/** A container's memory as `docker stats` counts it (cgroup v1 or v2), bytes. */
function containerMemory(id: string): number {
  const v1 = `/sys/fs/cgroup/memory/docker/${id}`;
  try {
    const usage = Number(readFileSync(`${v1}/memory.usage_in_bytes`, "utf8"));
    const inactive = Number(/^total_inactive_file (\d+)/m.exec(readFileSync(`${v1}/memory.stat`, "utf8"))?.[1] ?? 0);
    return usage - inactive;
  } catch {
    const v2 = `/sys/fs/cgroup/system.slice/docker-${id}.scope`;
    const usage = Number(readFileSync(`${v2}/memory.current`, "utf8"));
    const inactive = Number(/^inactive_file (\d+)/m.exec(readFileSync(`${v2}/memory.stat`, "utf8"))?.[1] ?? 0);
    return usage - inactive;
  }
}

/**
 * Memory of Ship and of the Python kernel in one container, MiB, read from the
 * host's /proc (the bench runs on the Docker host; inside the container Ship's
 * /proc entries are not readable): each one's anonymous memory (its own heap,
 * which nothing shares), and Ship's file-backed pages (its executable, shared
 * page cache across containers of the image).
 */
async function splitOf(ctx: BenchContext, containerId: string): Promise<{ ship: number; shipFile: number; kernel: number }> {
  const top = await ctx.docker.getContainer(containerId).top({ ps_args: "-o pid" });
  const out = { ship: 0, shipFile: 0, kernel: 0 };
  for (const [pid] of top.Processes as string[][]) {
    let cmd: string;
    let rollup: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? 0);
    if (cmd === "/usr/local/bin/ship") {
      out.ship = kb("Anonymous") / 1024;
      out.shipFile = (kb("Rss") - kb("Anonymous")) / 1024;
    } else if (cmd.includes("ship-kernel-driver")) out.kernel = kb("Anonymous") / 1024;
  }
  return out;
}

export async function coldLoad(ctx: BenchContext, total = 40, concurrency = 8): Promise<{ rows: Row[]; lines: string[] }> {
  const ids: string[] = [];
  const firstExec: number[] = [];
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          next++;
          const t0 = performance.now();
          const { id } = await createSandbox(ctx, COLD_PROFILE);
          ids.push(id);
          await bayExec(ctx, id);
          firstExec.push(performance.now() - t0);
        }
      }),
    );
    await Bun.sleep(2000); // let the logs reach the file and the kernels settle
    const lines = readyLines(ctx.logFile, new Set(ids));
    const col = (k: keyof ReadyLine) => lines.map((l) => Number(l[k] ?? 0));
    const session = col("ms");
    const rest = median(firstExec) - median(session);
    const rows: Row[] = [
      {
        bench: `cold: ${total} sandboxes, ${concurrency} at a time, create → first 1+1`,
        measure: "p50 / p95",
        runs: total,
        bay: `${ms(median(firstExec))} / ${ms(p95(firstExec))}`,
        direct: "-",
        ratio: "-",
      },
    ];
    const out = [
      `cold start under load, medians of ${lines.length} starts: engine create ${ms(median(col("create_ms")))}, ` +
        `engine start ${ms(median(col("start_ms")))}, Ship boot to /health + /meta ${ms(median(col("ship_ms")))}, ` +
        `session ready after ${ms(median(session))}; the first call's remaining ${ms(rest)} is the kernel becoming ready plus the exec`,
    ];
    const containers = await ctx.docker.listContainers({ filters: { label: [`bay.instance_id=${ctx.bay.instanceId}`] } });
    const mine = containers.filter((c) => ids.includes(c.Labels["bay.sandbox_id"] ?? ""));
    const mem = mine.map((c) => containerMemory(c.Id) / MiB);
    const split = await Promise.all(mine.slice(0, 3).map((c) => splitOf(ctx, c.Id)));
    const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
    rows.push({
      bench: `memory per idle ready sandbox, ${mine.length} running`,
      measure: "mean / max",
      runs: mine.length,
      bay: `${avg(mem).toFixed(1)} / ${Math.max(...mem).toFixed(1)} MiB`,
      direct: "-",
      ratio: "-",
    });
    out.push(
      `per idle sandbox (3 sampled): Ship ${avg(split.map((s) => s.ship)).toFixed(1)} MiB of its own (anonymous) plus ` +
        `${avg(split.map((s) => s.shipFile)).toFixed(1)} MiB of its executable's pages (page cache shared by every sandbox of the image), ` +
        `Python kernel ${avg(split.map((s) => s.kernel)).toFixed(1)} MiB (anonymous)`,
    );
    const proxies = proxyRss(mine.flatMap((c) => c.Ports.map((p) => p.PublicPort).filter((p): p is number => !!p)));
    if (proxies.length > 0) {
      out.push(
        `outside the container, per sandbox with a published port: the engine's port proxy (docker-proxy), ` +
          `${avg(proxies).toFixed(1)} MiB RSS each (${proxies.length} sampled); connect_mode unix_socket has none`,
      );
    }
    return { rows, lines: out };
  } finally {
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let id = queue.pop(); id; id = queue.pop()) await deleteSandbox(ctx, id);
      }),
    );
  }
}

/** RSS (MiB) of each docker-proxy process forwarding one of `ports` on the host. */
function proxyRss(ports: number[]): number[] {
  const want = new Set(ports.map(String));
  const ps = Bun.spawnSync(["ps", "-o", "rss=,args=", "-C", "docker-proxy"]).stdout.toString();
  return ps
    .split("\n")
    .map((line) => line.trim().match(/^(\d+)\s.*-host-port (\d+)/))
    .filter((m): m is RegExpMatchArray => !!m && want.has(m[2]!))
    .map((m) => Number(m[1]) / 1024);
}
