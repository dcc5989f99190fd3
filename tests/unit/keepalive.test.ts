import { expect, test } from "bun:test";
import { KEEPALIVE, withKeepalive } from "../../src/bay/e2b/envd/keepalive.ts";

test("withKeepalive: the source's items in order, a KEEPALIVE for each quiet interval, then the end", async () => {
  async function* source() {
    yield 1;
    await Bun.sleep(130);
    yield 2;
  }
  const got: Array<number | typeof KEEPALIVE> = [];
  for await (const item of withKeepalive(source(), 50)) got.push(item);
  expect(got[0]).toBe(1);
  expect(got.at(-1)).toBe(2);
  const quiet = got.slice(1, -1);
  expect(quiet.length).toBeGreaterThanOrEqual(1);
  expect(quiet.every((item) => item === KEEPALIVE)).toBe(true);
});

test("withKeepalive: a consumer that stops early closes the source", async () => {
  let closed = false;
  async function* source() {
    try {
      for (let i = 0; ; i++) yield i;
    } finally {
      closed = true;
    }
  }
  for await (const item of withKeepalive(source(), 1_000)) if (item === 3) break;
  expect(closed).toBe(true);
});

test("withKeepalive: an error of the source reaches the consumer", async () => {
  async function* source() {
    yield "a";
    throw new Error("source broke");
  }
  const got: unknown[] = [];
  const run = async () => {
    for await (const item of withKeepalive(source(), 1_000)) got.push(item);
  };
  await expect(run()).rejects.toThrow("source broke");
  expect(got).toEqual(["a"]);
});
