/**
 * GET /health needs no credentials and is exempt from the rate limit, so anyone
 * who can reach Bay can call it as often as they like. Each check asks the engine
 * (a ping and one image inspect per profile) and the database: a burst of checks
 * must not become a burst of engine calls. Checks in flight at once share one.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestBay, type TestBay } from "../support/harness.ts";

let t: TestBay;
beforeAll(async () => {
  t = await createTestBay();
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

  // Not a cache: the next request, after the burst, checks again.
  const before = engineCalls;
  expect((await t.bay.app.request("/health")).status).toBe(200);
  expect(engineCalls).toBe(before + perCheck);
});
