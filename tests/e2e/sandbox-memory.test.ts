/**
 * Bay streams file transfers: how much its resident memory grows while a file is
 * uploaded and downloaded through it does not scale with the file's size. Each
 * size is measured on a fresh Bay subprocess (same starting state), and the
 * growth for 256 MiB must stay within 64 MiB of the growth for 64 MiB; a relay
 * that buffered the body would grow by the 192 MiB difference. The absolute
 * numbers are a measurement, printed by `bun run bench` (bench/memory.ts).
 */
import { beforeAll, expect, test } from "bun:test";
import { requireShipImages, spawnBay } from "./support/e2e.ts";
import { measureTransfer, type TransferMemory } from "./support/memory.ts";

const MiB = 1024 * 1024;
const SMALL = 64;
const LARGE = 256;
const SLACK = 64 * MiB;

beforeAll(async () => {
  await requireShipImages();
});

async function onFreshBay(sizeMiB: number): Promise<TransferMemory> {
  const bay = await spawnBay();
  try {
    return await measureTransfer(bay.url, bay.pid, "mem-test", sizeMiB);
  } finally {
    await bay.close();
  }
}

test(`Bay's RSS growth for a ${LARGE} MiB transfer is no more than ${SLACK / MiB} MiB above that for ${SMALL} MiB (streaming)`, async () => {
  const small = await onFreshBay(SMALL);
  const large = await onFreshBay(LARGE);
  expect(large.growthUp).toBeLessThan(small.growthUp + SLACK);
  expect(large.growthDown).toBeLessThan(small.growthDown + SLACK);
}, 300_000);
