/** Small statistics and table printing for the benchmarks. */

export function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export const median = (v: number[]) => quantile(v, 0.5);
export const p95 = (v: number[]) => quantile(v, 0.95);

export interface Row {
  bench: string;
  measure: string;
  runs: number;
  bay: string;
  direct: string;
  ratio: string;
}

export const ms = (v: number) => `${v.toFixed(2)} ms`;
export const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

/** Column titles of the two compared sides; default Bay against going direct. */
export interface Sides {
  bay: string;
  direct: string;
  ratio: string;
}

export function printTable(rows: Row[], sides: Sides = { bay: "via Bay", direct: "direct", ratio: "Bay/direct" }): void {
  const cols: Array<keyof Row> = ["bench", "measure", "runs", "bay", "direct", "ratio"];
  const head: Row = { bench: "bench", measure: "measure", runs: "runs" as unknown as number, ...sides };
  const all = [head, ...rows];
  const width = cols.map((c) => Math.max(...all.map((r) => String(r[c]).length)));
  const line = (r: Row) => cols.map((c, i) => String(r[c]).padEnd(width[i]!)).join("  ");
  console.log(line(head));
  console.log(width.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

/** Times an async function in milliseconds. */
export async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Times `a` and `b` back to back, `a` first or not (alternate to cancel order effects); returns [a, b] in ms. */
export async function timedPair(a: () => Promise<unknown>, b: () => Promise<unknown>, aFirst: boolean): Promise<[number, number]> {
  if (aFirst) {
    const ta = await time(a);
    return [ta, await time(b)];
  }
  const tb = await time(b);
  return [await time(a), tb];
}
