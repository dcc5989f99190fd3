/**
 * GET /health needs no credentials and is exempt from the rate limit, so anyone
 * who can reach Bay can call it as often as they like. Each check asks the engine
 * (a ping and one image inspect per profile) and the database: a burst of checks
 * must not become a burst of engine calls. Checks in flight at once share one,
 * and the engine's answer is reused for a few seconds (so /health can be scraped
 * every second), the database pinged on every check.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

let t: TestBay;
let offset = 0;
beforeAll(async () => {
  t = await createTestBay({ now: () => Date.now() + offset });
});
afterAll(async () => {
  await t?.close();
});

test("a burst of unauthenticated /health requests costs the engine one check, not one per request", async () => {
  const driver = t.bay.driver;
  let engineCalls = 0;
  const ping = driver.ping.bind(driver);
  const imageExists = driver.imageExists.bind(driver);
  driver.ping = () => {
    engineCalls++;
    return ping();
  };
  driver.imageExists = (image: string) => {
    engineCalls++;
    return imageExists(image);
  };
  const perCheck = 1 + t.config.profiles.length;
  const answers = await Promise.all(Array.from({ length: 40 }, () => t.bay.app.request("/health")));
  for (const res of answers) expect(res.status).toBe(200);
  const bodies = await Promise.all(answers.map((r) => r.json() as Promise<{ status: string }>));
  expect(new Set(bodies.map((b) => b.status)).size).toBe(1);
  expect(engineCalls).toBeLessThanOrEqual(perCheck);

  // The engine's answer is reused for 5 s: a scraper every second costs the engine nothing more...
  const before = engineCalls;
  offset += 4_000;
  expect((await t.bay.app.request("/health")).status).toBe(200);
  expect(engineCalls).toBe(before);
  // ...and once it is older, the next request checks again.
  offset += 1_500;
  expect((await t.bay.app.request("/health")).status).toBe(200);
  expect(engineCalls).toBe(before + perCheck);
});
