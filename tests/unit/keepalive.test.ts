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

test("withKeepalive: an item awaited over many intervals gets one reaction, not one per keepalive", async () => {
  // Each `then` on the awaited read is a reaction kept until it settles (a day of silence: 17,280 of them).
  let thens = 0;
  class Counted<T> extends Promise<T> {
    // biome-ignore lint/suspicious/noThenProperty: the test counts the reactions the awaited read gets
    override then<A = T, B = never>(
      ok?: ((v: T) => A | PromiseLike<A>) | null,
      bad?: ((e: unknown) => B | PromiseLike<B>) | null,
    ): Promise<A | B> {
      thens++;
      return super.then(ok, bad);
    }
  }
  const got: Array<number | typeof KEEPALIVE> = [];
  // The item comes once ten keepalives were passed on, however slowly the machine runs.
  const slow: AsyncIterable<number> = {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        new Counted<IteratorResult<number>>((resolve) => {
          const poll = setInterval(() => {
            if (got.filter((i) => i === KEEPALIVE).length < 10) return;
            clearInterval(poll);
            resolve({ done: false, value: 7 });
          }, 5);
        }),
    }),
  };
  for await (const item of withKeepalive(slow, 10)) {
    got.push(item);
    if (item === 7) break;
  }
  expect(got.filter((i) => i === KEEPALIVE).length).toBeGreaterThanOrEqual(10);
  expect(got.at(-1)).toBe(7);
  expect(thens).toBeLessThanOrEqual(3);
});

test("withKeepalive: nothing is read ahead, so a consumer that stops at its last item gets no KEEPALIVE after it", async () => {
  let reads = 0;
  async function* source() {
    reads++;
    yield "last";
    reads++;
    await Bun.sleep(200);
  }
  const got: unknown[] = [];
  for await (const item of withKeepalive(source(), 10)) {
    got.push(item);
    await Bun.sleep(60);
    if (item === "last") break;
  }
  expect(got).toEqual(["last"]);
  expect(reads).toBe(1);
});

test("withKeepalive: an interval under 1 ms is refused, not sent on every turn of the event loop", async () => {
  async function* source() {
    yield 1;
  }
  for (const ms of [0, -5, Number.NaN]) await expect(withKeepalive(source(), ms).next()).rejects.toThrow(RangeError);
});
