import { afterAll, beforeAll, test } from "bun:test";
import { startShip, type ShipContainer } from "../../tests/ship/support/container.ts";
import { ShipClient } from "../../tests/ship/support/caller.ts";
let ship: ShipContainer;
let client: ShipClient;
beforeAll(async () => {
  ship = await startShip("bay-ship:latest");
  client = new ShipClient((p, i) => fetch(`${ship.baseUrl}${p}`, i), ship.credentials.secret);
}, 120_000);
afterAll(async () => { await ship?.remove(); });
const time = async (label: string, f: () => Promise<any>) => {
  const t = performance.now();
  const r = await f();
  console.log(`### ${label}: ${Math.round(performance.now() - t)} ms`, JSON.stringify(r.body).slice(0, 300));
};
test("byte-at-a-time request read, and timeout while reading", async () => {
  await client.python("x = 42");
  await time("python 1 MiB code (comment)", () => client.json("POST", "/ipython/exec", { code: "#" + "x".repeat(1024 * 1024 - 1) }));
  const env = Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`V${i}`, "y".repeat(1900)]));
  await time("python env 1024x1900, timeout 1", () => client.json("POST", "/ipython/exec", { code: "x", env, timeout: 1 }));
  await time("next run: is x still there?", () => client.json("POST", "/ipython/exec", { code: "x" }));
  const ps = await client.shell("ps -eo pid,etimes,rss,args | grep -v ps");
  console.log("### ps", ps.body.output);
}, 300_000);
