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
  console.log(`### ${label}: ${Math.round(performance.now() - t)} ms`, JSON.stringify(r.body).slice(0, 200));
};
test("per-run cost of env", async () => {
  await client.python("1");
  for (const [n, size] of [[128, 1900], [256, 1900], [512, 1900], [1024, 1900], [1024, 10]] as const) {
    const env = Object.fromEntries(Array.from({ length: n }, (_, i) => [`V${i}`, "y".repeat(size)]));
    await time(`python ${n}x${size}`, () => client.json("POST", "/ipython/exec", { code: "1", env }));
  }
  await time(`python no env`, () => client.json("POST", "/ipython/exec", { code: "1" }));
  await time(`python code: 1024 os.environ sets`, () => client.json("POST", "/ipython/exec", { code: "import os, time\nt=time.time()\nfor i in range(1024): os.environ['W%d'%i]='y'*1900\ntime.time()-t" }));
  await client.code({ language: "javascript", code: "1" });
  const env = Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`V${i}`, "y".repeat(1900)]));
  await time(`js 1024x1900`, () => client.json("POST", "/code/exec", { language: "javascript", code: "1", env }));
  await time(`shell 1024x1900`, () => client.json("POST", "/shell/exec", { command: "true", env }));
}, 300_000);
