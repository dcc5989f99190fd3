/**
 * Writes with known content: binary uploads (both field orders) and text
 * writes, through a sandbox route or the workspace's own data plane, to a
 * bounded pool of paths per volume (so later writes replace earlier versions).
 */
import type { Rng } from "../lib/rng.ts";
import { UPLOAD_ORDERS } from "./client.ts";
import type { Volume } from "./ledger.ts";
import type { SoakWorld } from "./world.ts";

export interface WriteFailure {
  volume: string;
  route: string;
  path: string;
  status: number | string;
  body: string;
}

const PATHS = [...Array.from({ length: 6 }, (_, i) => `soak/f${i}.bin`), "soak/deep/a/b/c.bin", "top.bin"];

function content(rng: Rng): Uint8Array {
  const size = rng.chance(0.1) ? rng.int(2, 8) * 1024 * 1024 : rng.chance(0.1) ? 0 : rng.int(1, 256 * 1024);
  return rng.bytes(size);
}

/** Printable text with multi-byte characters, for the JSON write route. */
function text(rng: Rng): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \n\té€😀";
  const chars = [...alphabet];
  return Array.from({ length: rng.int(0, 20_000) }, () => rng.pick(chars)).join("");
}

/** One write to `volume` (through `via`, or a route chosen at random); failures are recorded as unknown outcomes and returned. */
export async function writeOne(world: SoakWorld, volume: Volume, via?: "sandbox" | "workspace"): Promise<WriteFailure | null> {
  const { rng, client, ledger } = world;
  const useSandbox = via === undefined ? rng.chance(0.7) : via === "sandbox";
  const route = useSandbox ? volume.sandboxRoute : volume.workspaceRoute;
  const path = rng.pick(PATHS);
  let data: Uint8Array = new Uint8Array();
  let status: number | string;
  let body = "";
  try {
    if (rng.chance(0.7)) {
      data = content(rng);
      const order = rng.pick(UPLOAD_ORDERS);
      const bytes = data;
      // 503 (a restarted runtime cannot take a half-sent stream) asks for a retry: the client retries.
      const r = await client.retrying(() => client.upload(route, path, bytes, order), 60_000);
      status = r.status;
      body = String(r.body);
    } else {
      const t = text(rng);
      data = new TextEncoder().encode(t);
      const r = await client.retrying(() => client.json("PUT", `${route}/filesystem/files`, { path, content: t }), 60_000);
      status = r.status;
      body = JSON.stringify(r.body);
    }
  } catch (e) {
    status = (e as Error).name;
  }
  ledger.wrote(volume, path, data, status === 200);
  return status === 200 ? null : { volume: volume.name, route, path, status, body: body.slice(0, 300) };
}
