/**
 * Workspace data-plane throughput: upload then download a 32 MiB file through
 * Bay's workspace routes (no Ship: a helper container and the engine's archive
 * API) versus the engine's archive API straight on a helper container of our
 * own (a tar in, a tar out). Interleaved; MiB/s, plus a small-file round trip.
 *
 * Standalone: `bun run bench/workspace-transfer.ts` (BENCH_RUNS as in index.ts).
 */
import { Readable } from "node:stream";
import tar from "tar-stream";
import { chunkOf, docker, removeLabelledQuietly, requireShipImages, SHIP_IMAGE } from "../tests/e2e/support/e2e.ts";
import type { BenchContext } from "./context.ts";
import { bayJson, startBench } from "./context.ts";
import { median, ms, printTable, ratio, time, type Row } from "./stats.ts";

const SIZE = 32 * 1024 * 1024;
const SMALL = "x".repeat(1024);

/** A one-file tar of `data` named `name`, streamed. */
function tarOf(name: string, data: Uint8Array): Readable {
  const pack = tar.pack();
  pack.entry(
    { name, size: data.byteLength, mode: 0o644, uid: 1000, gid: 1000 },
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  );
  pack.finalize();
  return Readable.from(pack);
}

async function drain(stream: NodeJS.ReadableStream): Promise<number> {
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) n += c.byteLength;
  return n;
}

export async function workspaceTransfer(ctx: BenchContext): Promise<Row[]> {
  const ws = await bayJson<{ id: string }>(ctx, "POST", "/v1/workspaces", {});
  if (ws.status !== 201) throw new Error(`create workspace: ${ws.status}`);
  const id = ws.body.id;
  const volume = `bench-ws-${crypto.randomUUID().slice(0, 8)}`;
  await docker.createVolume({ Name: volume, Labels: ctx.benchLabel });
  const helper = await docker.createContainer({
    Image: SHIP_IMAGE,
    Cmd: ["true"],
    Labels: ctx.benchLabel,
    NetworkDisabled: true,
    HostConfig: { Mounts: [{ Type: "volume", Source: volume, Target: "/workspace" }], NetworkMode: "none" },
  });
  try {
    const data = chunkOf(11, SIZE);
    const blob = new Blob([data]);
    const base = `${ctx.bay.url}/v1/workspaces/${id}/filesystem`;
    const headers = ctx.auth;
    const check = async (res: Response, what: string) => {
      if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
    };
    const sides = {
      bay: {
        async up(path: string) {
          const f = new FormData();
          f.append("path", path);
          f.append("file", blob, "bench.bin");
          const res = await fetch(`${base}/upload`, { method: "POST", headers, body: f });
          await check(res, "upload");
          await res.arrayBuffer();
        },
        async down(path: string) {
          const res = await fetch(`${base}/download?path=${path}`, { headers });
          await check(res, "download");
          let n = 0;
          for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) n += c.byteLength;
          if (n !== SIZE) throw new Error(`download: got ${n} bytes, want ${SIZE}`);
        },
        async small() {
          const put = await fetch(`${base}/files`, {
            method: "PUT",
            headers: { ...headers, "content-type": "application/json" },
            body: JSON.stringify({ path: "small/s.txt", content: SMALL }),
          });
          await check(put, "write");
          await put.arrayBuffer();
          const get = await fetch(`${base}/files?path=small/s.txt`, { headers });
          await check(get, "read");
          await get.arrayBuffer();
        },
      },
      direct: {
        async up(path: string) {
          await helper.putArchive(tarOf(path, data), { path: "/workspace" });
        },
        async down(path: string) {
          const n = await drain(await helper.getArchive({ path: `/workspace/${path}` }));
          if (n < SIZE) throw new Error(`direct download: got ${n} bytes`);
        },
        async small() {
          await helper.putArchive(tarOf("s.txt", Buffer.from(SMALL)), { path: "/workspace" });
          await drain(await helper.getArchive({ path: "/workspace/s.txt" }));
        },
      },
    };
    const times = {
      bay: { up: [] as number[], down: [] as number[], small: [] as number[] },
      direct: { up: [] as number[], down: [] as number[], small: [] as number[] },
    };
    await sides.bay.up("warm.bin");
    await sides.direct.up("warm.bin");
    for (let i = 0; i < ctx.runs; i++) {
      const order = i % 2 === 0 ? (["bay", "direct"] as const) : (["direct", "bay"] as const);
      for (const k of order) {
        times[k].up.push(await time(() => sides[k].up(`${k}.bin`)));
        times[k].down.push(await time(() => sides[k].down(`${k}.bin`)));
        times[k].small.push(await time(() => sides[k].small()));
      }
    }
    const mibs = (msv: number) => (SIZE / 1024 / 1024 / (msv / 1000)).toFixed(0);
    const row = (what: "up" | "down"): Row => {
      const b = median(times.bay[what]);
      const d = median(times.direct[what]);
      return {
        bench: `workspace ${what === "up" ? "upload" : "download"} 32 MiB`,
        measure: "median MiB/s",
        runs: ctx.runs,
        bay: `${mibs(b)} MiB/s`,
        direct: `${mibs(d)} MiB/s`,
        ratio: ratio(b, d),
      };
    };
    const b = median(times.bay.small);
    const d = median(times.direct.small);
    return [
      row("up"),
      row("down"),
      { bench: "workspace write+read 1 KiB", measure: "median", runs: ctx.runs, bay: ms(b), direct: ms(d), ratio: ratio(b, d) },
    ];
  } finally {
    await helper.remove({ force: true }).catch(() => {});
    await docker
      .getVolume(volume)
      .remove()
      .catch(() => {});
    await fetch(`${ctx.bay.url}/v1/workspaces/${id}`, { method: "DELETE", headers: ctx.auth }).catch(() => {});
  }
}

if (import.meta.main) {
  await requireShipImages();
  const benchLabel = { "bay.bench.run": `bench-${crypto.randomUUID().slice(0, 8)}` };
  const runs = Math.max(10, Number(process.env.BENCH_RUNS ?? 10));
  const ctx = await startBench(docker, benchLabel, runs, 0);
  let failed = false;
  try {
    printTable(await workspaceTransfer(ctx));
  } catch (e) {
    failed = true;
    console.error("benchmark failed:", e);
  } finally {
    await ctx.close();
    await removeLabelledQuietly(benchLabel);
  }
  process.exit(failed ? 1 : 0);
}
