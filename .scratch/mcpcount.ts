import { RequestGenerator } from "../scripts/fuzz/generate.ts";
import { loadContract } from "../scripts/fuzz/spec.ts";
import { Rng } from "../scripts/lib/rng.ts";
const contract = await loadContract();
for (const seed of [3]) {
  const g = new RequestGenerator(contract, { maxBodyBytes: 1024, maxUploadBytes: 2048 });
  const rng = new Rng(seed);
  const counts = new Map<string, number>();
  let mcp = 0;
  for (let i = 0; i < 20000; i++) {
    const r = g.next(rng, i);
    if (r.aim !== "postMcp") continue;
    mcp++;
    const m = r.mutation.split(" ").slice(0, 2).join(" ");
    if (m.startsWith("mcp")) counts.set(m, (counts.get(m) ?? 0) + 1);
    if (m === "mcp foreign" && !counts.has("first")) counts.set("first", i);
  }
  console.log(seed, mcp, [...counts].sort());
}
