/**
 * Throughput: upload then download a 32 MiB file through Bay versus straight to
 * the sandbox's Ship (the raw bytes Bay forwards), interleaved; MiB/s. Bay takes
 * the upload both ways a client may send it, in the same rounds: a multipart form,
 * and the raw bytes (`application/octet-stream` with `?path=`), which Bay passes
 * on without reading them.
 */
import { chunkOf } from "../tests/e2e/support/e2e.ts";
import { bayExec, type BenchContext, createSandbox, deleteSandbox, shipOf } from "./context.ts";
import { median, ratio, time, type Row } from "./stats.ts";

const SIZE = 32 * 1024 * 1024;

export async function transfer(ctx: BenchContext): Promise<Row[]> {
  const { id } = await createSandbox(ctx);
  try {
    const data = chunkOf(7, SIZE);
    const blob = new Blob([data]);
    const form = (path: string) => {
      const f = new FormData();
      f.append("path", path);
      f.append("file", blob, "bench.bin");
      return f;
    };
    await bayExec(ctx, id); // starts the session
    const ship = await shipOf(ctx, id);
    const bayBase = `${ctx.bay.url}/v1/sandboxes/${id}/filesystem`;
    const headers = ctx.auth;

    const check = async (res: Response, what: string) => {
      if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
    };
    const upload = async (base: string, h: Record<string, string>, path: string, raw: boolean) => {
      // Ship takes the bytes themselves (what Bay forwards); Bay a multipart form or the same bytes.
      const res = raw
        ? await fetch(`${base}/upload?path=${path}`, {
            method: "POST",
            headers: { ...h, "content-type": "application/octet-stream" },
            body: blob,
          })
        : await fetch(`${base}/upload`, { method: "POST", headers: h, body: form(path) });
      await check(res, "upload");
      await res.arrayBuffer();
    };
    const download = async (base: string, h: Record<string, string>, path: string) => {
      const res = await fetch(`${base}/download?path=${path}`, { headers: h });
      await check(res, "download");
      let n = 0;
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) n += c.byteLength;
      if (n !== SIZE) throw new Error(`download: got ${n} bytes, want ${SIZE}`);
    };
    const sides = {
      bay: { base: bayBase, h: headers, up: [] as number[], down: [] as number[], raw: [] as number[] },
      direct: {
        base: `${ship.endpoint}/filesystem`,
        h: { authorization: `Bearer ${ship.secret}` },
        up: [] as number[],
        down: [] as number[],
      },
    };
    await upload(sides.bay.base, sides.bay.h, "warm.bin", false);
    await upload(sides.bay.base, sides.bay.h, "warm.bin", true);
    await upload(sides.direct.base, sides.direct.h, "warm.bin", true);
    for (let i = 0; i < ctx.runs; i++) {
      const order = i % 2 === 0 ? (["bay", "direct"] as const) : (["direct", "bay"] as const);
      for (const k of order) {
        const s = sides[k];
        s.up.push(await time(() => upload(s.base, s.h, `${k}.bin`, k === "direct")));
        s.down.push(await time(() => download(s.base, s.h, `${k}.bin`)));
        if (k === "bay") sides.bay.raw.push(await time(() => upload(s.base, s.h, "raw.bin", true)));
      }
    }
    const mibs = (msv: number) => (SIZE / 1024 / 1024 / (msv / 1000)).toFixed(0);
    const row = (what: "up" | "down" | "raw"): Row => {
      const b = median(sides.bay[what]);
      const d = median(sides.direct[what === "raw" ? "up" : what]);
      return {
        bench: { up: "upload 32 MiB (multipart)", raw: "upload 32 MiB (raw body)", down: "download 32 MiB" }[what],
        measure: "median MiB/s",
        runs: ctx.runs,
        bay: `${mibs(b)} MiB/s`,
        direct: `${mibs(d)} MiB/s`,
        // Time ratio, so >1 means slower through Bay, like the other rows.
        ratio: ratio(b, d),
      };
    };
    return [row("up"), row("raw"), row("down")];
  } finally {
    await deleteSandbox(ctx, id);
  }
}
