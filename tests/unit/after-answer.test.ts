/** Work that runs once an answer is on its way: its order, its request context, and a piece that throws. */
import { expect, test } from "bun:test";
import { afterAnswer, afterAnswersRan } from "../../src/bay/observability/after-answer.ts";
import { currentRequest, runInRequest } from "../../src/bay/observability/request-context.ts";

test("nothing runs before the answer's turn ends; then each piece, in order, in the request it was queued in (review s57: none outside one)", async () => {
  const seen: Array<string | undefined> = [];
  const note = () => seen.push(currentRequest()?.requestId ?? "none");
  // The first piece schedules the batch from inside request A; the others join it.
  runInRequest({ requestId: "req-A" }, () => afterAnswer(note));
  afterAnswer(note);
  runInRequest({ requestId: "req-B" }, () => afterAnswer(note));
  expect(seen).toEqual([]);
  await afterAnswersRan();
  expect(seen).toEqual(["req-A", "none", "req-B"]);
});

test("a piece that throws leaves the others to run, and its error reaches the process's handler (Bay's policy logs it and serves on)", async () => {
  // In a process of its own: the test runner fails any test during which an error goes uncaught.
  const module = new URL("../../src/bay/observability/after-answer.ts", import.meta.url).pathname;
  const script = `
    const { afterAnswer } = await import(${JSON.stringify(module)});
    const ran = [];
    process.on("uncaughtException", (e) => console.log("caught " + e.message));
    afterAnswer(() => ran.push(1));
    afterAnswer(() => { throw new Error("boom"); });
    afterAnswer(() => ran.push(3));
    setTimeout(() => console.log("ran " + ran.join(",")), 20);
  `;
  const proc = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(out.trim().split("\n")).toEqual(["caught boom", "ran 1,3"]);
});
