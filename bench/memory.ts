/**
 * Bay's resident memory while files pass through it (upload, then download):
 * the baseline and the peak growth over it, for a few sizes. A measurement, not
 * a pass/fail bound; the streaming test only compares sizes.
 */
import { measureTransfer } from "../tests/e2e/support/memory.ts";
import type { BenchContext } from "./context.ts";

const MiB = 1024 * 1024;

export async function memory(ctx: BenchContext, sizesMiB = [64, 256]): Promise<string[]> {
  const lines: string[] = [];
  for (const size of sizesMiB) {
    const m = await measureTransfer(ctx.bay.url, ctx.bay.pid, ctx.owner, size);
    const f = (b: number) => (b / MiB).toFixed(1);
    lines.push(
      `bay rss, ${size} MiB file: baseline ${f(m.baseline)} MiB, upload peak +${f(m.growthUp)} MiB, download peak +${f(m.growthDown)} MiB`,
    );
  }
  return lines;
}
