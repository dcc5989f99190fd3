/** The logger's stderr batching: lines close together go out in one write, nothing is lost or reordered. */
import { expect, test } from "bun:test";
import { batchedStderr, createLogger } from "../../src/bay/logger.ts";

test("lines written within the flush window go out in one write, in order", async () => {
  const writes: string[] = [];
  const write = batchedStderr({ write: (s: string) => writes.push(s) }, 20);
  for (let i = 0; i < 10; i++) write(`line ${i}`);
  expect(writes).toEqual([]);
  await Bun.sleep(60);
  expect(writes).toEqual([Array.from({ length: 10 }, (_, i) => `line ${i}\n`).join("")]);
  write("later");
  await Bun.sleep(60);
  expect(writes).toEqual([writes[0]!, "later\n"]);
});

test("many lines at once are written without waiting for the window", () => {
  const writes: string[] = [];
  const write = batchedStderr({ write: (s: string) => writes.push(s) }, 60_000);
  for (let i = 0; i < 256; i++) write(`x${i}`);
  expect(writes.length).toBe(1);
  expect(writes[0]!.split("\n").length - 1).toBe(256);
});

test("every record carries a current ISO time", async () => {
  const lines: string[] = [];
  const log = createLogger("info", (l) => lines.push(l));
  const before = Date.now();
  log.info("a");
  await Bun.sleep(5);
  log.info("b");
  const [a, b] = lines.map((l) => Date.parse(JSON.parse(l).time));
  expect(a!).toBeGreaterThanOrEqual(before);
  expect(b!).toBeGreaterThan(a!);
});

test("an unrendered line is rendered when its batch is written, and one that cannot be rendered is replaced, in its place", async () => {
  const writes: string[] = [];
  const write = batchedStderr({ write: (s: string) => writes.push(s) }, 20);
  let rendered = 0;
  write("first");
  write(() => {
    rendered++;
    return "second";
  });
  write(() => JSON.stringify({ n: 1n })); // a BigInt: JSON.stringify throws
  write("fourth");
  expect(rendered).toBe(0);
  await Bun.sleep(60);
  expect(rendered).toBe(1);
  const lines = writes.join("").trimEnd().split("\n");
  expect(lines[0]).toBe("first");
  expect(lines[1]).toBe("second");
  expect(JSON.parse(lines[2]!)).toMatchObject({ level: "error", msg: "a log line could not be rendered" });
  expect(lines[3]).toBe("fourth");
});

test("a line whose render throws something that cannot even be named loses only itself", async () => {
  const writes: string[] = [];
  const write = batchedStderr({ write: (s: string) => writes.push(s) }, 20);
  write(() => {
    throw Object.create(null); // String() of it throws too
  });
  write("after");
  await Bun.sleep(60);
  write("later");
  await Bun.sleep(60);
  const lines = writes.join("").trimEnd().split("\n");
  expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "a log line could not be rendered", error: "unknown" });
  expect(lines.slice(1)).toEqual(["after", "later"]);
});

test("a logger with its own writer never throws for a record it cannot render", () => {
  const lines: string[] = [];
  const log = createLogger("info", (l) => lines.push(l));
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  expect(() => log.info("circular", { loop })).not.toThrow();
  expect(() => log.info("big", { n: 1n })).not.toThrow();
  const getter = Object.defineProperty({}, "boom", {
    enumerable: true,
    get() {
      throw new Error("getter");
    },
  });
  expect(() => log.info("getter", getter)).not.toThrow();
  const proxy = new Proxy(
    {},
    {
      ownKeys() {
        throw new Error("proxy");
      },
    },
  );
  expect(() => log.info("proxy", proxy)).not.toThrow();
  log.info("after");
  expect(lines.map((l) => [JSON.parse(l).msg, JSON.parse(l).error])).toEqual([
    ["a log line could not be rendered", expect.any(String)],
    ["a log line could not be rendered", expect.any(String)],
    ["a log line could not be rendered", "getter"],
    ["a log line could not be rendered", "proxy"],
    ["after", undefined],
  ]);
});
