/**
 * Review (rcreview): lines still waiting in the logger's batch when the process
 * exits reach stderr whole, even when stderr is a pipe whose reader is slower
 * than the burst (a log shipper, `docker logs`, journald): an asynchronous
 * write of more than the pipe holds, made from an 'exit' listener, is cut off.
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";

const LOGGER = join(resolve(import.meta.dir, "../.."), "src/bay/logger.ts");

test("every pending line is written at process.exit, with a slow reader on a pipe", async () => {
  // 250 lines of ~2 KB: more than a pipe's 64 KiB, all pending when exit comes.
  const child = `import { createLogger } from ${JSON.stringify(LOGGER)};
    const log = createLogger("info");
    for (let i = 0; i < 250; i++) log.info("burst", { i, pad: "p".repeat(2000) });
    process.exit(0);`;
  // The reader starts only after the writer has exited (sleep), as a busy shipper may.
  const proc = Bun.spawn(["sh", "-c", 'bun -e "$CHILD" 2>&1 >/dev/null | (sleep 1; grep -c \'"msg":"burst"\')'], {
    env: { ...process.env, CHILD: child },
    stdout: "pipe",
  });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  expect(Number(out.trim())).toBe(250);
}, 30_000);

test("a record holding an object is logged as the object was when logged, not as it is when its batch is written; one that cannot be rendered is replaced, and the call does not throw", async () => {
  const child = `import { createLogger } from ${JSON.stringify(LOGGER)};
    const log = createLogger("info");
    const state = { phase: "before", list: [1] };
    log.info("nested", { state, n: 1 });
    log.info("flat", { phase: state.phase });
    state.phase = "after";
    state.list.push(2);
    await Bun.sleep(10);
    log.info("later", { state });
    const loop = {}; loop.self = loop;
    log.info("circular", { loop });
    log.info("last", { n: 2 });
    process.exit(0);`;
  const proc = Bun.spawn(["bun", "-e", child], { stdout: "ignore", stderr: "pipe" });
  const lines = (await new Response(proc.stderr).text())
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  await proc.exited;
  expect(lines.map((l) => [l.msg, l.state ?? l.phase])).toEqual([
    ["nested", { phase: "before", list: [1] }],
    ["flat", "before"],
    ["later", { phase: "after", list: [1, 2] }],
    ["a log line could not be rendered", undefined],
    ["last", undefined],
  ]);
}, 30_000);
