/** freePort never hands out a port again that this process handed out recently (two taken before either is bound). */
import { expect, test } from "bun:test";
import { freePort } from "../support/free-port.ts";

test("a repeated port is probed again", () => {
  // A fake probe's ports are below 1024: never one a real probe (an ephemeral port) hands out.
  const answers = [101, 101, 103, 101, 103, 105];
  const probe = () => answers.shift()!;
  expect([freePort(probe), freePort(probe), freePort(probe)]).toEqual([101, 103, 105]);
  expect(answers).toEqual([]);
});

test("a probe that only repeats itself ends in an error, not a port handed out twice", () => {
  expect(freePort(() => 107)).toBe(107);
  expect(() => freePort(() => 107)).toThrow(/no free port/);
});

test("a thousand ports in a row are all different", () => {
  // Linux's bind(0) pool is ~14k ports: without the memory, a thousand draws repeat one almost surely.
  const ports = Array.from({ length: 1000 }, () => freePort());
  expect(new Set(ports).size).toBe(1000);
});
