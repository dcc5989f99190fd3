/**
 * `bay mcp` (the real CLI, as a process) against a stand-in for Bay's /mcp that
 * misbehaves: every request the agent sends gets exactly one answer, the
 * server's or the relay's own error, and with its input ended the relay exits.
 * Before, an answer stream that ended without a response (or a 202 to a request)
 * left the relay waiting forever, and a second request with an id already in
 * flight went unanswered.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");
let server: ReturnType<typeof Bun.serve>;

beforeAll(() => {
  // The request's method says how the stand-in answers.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.method !== "POST") return new Response(null, { status: 405 });
      const msg = (await req.json()) as { id?: number; method: string };
      if (msg.id === undefined) return new Response(null, { status: 202 });
      if (msg.method === "cut") {
        const body = new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode(": no answer follows\n\n"));
            setTimeout(() => c.close(), 200);
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }
      if (msg.method === "accepted") return new Response(null, { status: 202 });
      if (msg.method === "fail") return new Response("boom", { status: 500 });
      if (msg.method === "sse") {
        const event = `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { via: "sse" } })}\n\n`;
        return new Response(event, { headers: { "content-type": "text/event-stream" } });
      }
      return Response.json({ jsonrpc: "2.0", id: msg.id, result: { ok: msg.method } });
    },
  });
});
afterAll(() => server.stop(true));

async function relay(lines: object[]): Promise<{ code: number | string; answers: Array<Record<string, any>> }> {
  const proc = Bun.spawn(["bun", "run", join(ROOT, "src/bay/cli.ts"), "mcp", "--url", `http://127.0.0.1:${server.port}`, "--owner", "t"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" },
    stdin: new Blob([`${lines.map((l) => JSON.stringify(l)).join("\n")}\n`]),
    stdout: "pipe",
    stderr: "ignore",
  });
  const code = await Promise.race([proc.exited, Bun.sleep(20_000).then(() => "hung")]);
  if (code === "hung") proc.kill("SIGKILL");
  const answers = (await new Response(proc.stdout).text())
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  return { code, answers };
}

const req = (id: number, method: string) => ({ jsonrpc: "2.0", id, method });

test("an answer stream that ends without the response, and a 202 to a request: the relay answers each, then exits 0", async () => {
  const { code, answers } = await relay([req(1, "cut"), req(2, "accepted"), req(3, "fine")]);
  expect(code).toBe(0);
  const byId = Object.fromEntries(answers.map((a) => [a.id, a]));
  expect(answers).toHaveLength(3);
  for (const id of [1, 2])
    expect(byId[id].error).toEqual({ code: -32000, message: "Bay ended its answer without a response to this request" });
  expect(byId[3].result).toEqual({ ok: "fine" });
}, 30_000);

test("the same id twice in flight: two answers; a refused POST: the relay's error, once", async () => {
  const { code, answers } = await relay([req(7, "a"), req(7, "b"), req(8, "fail"), req(9, "sse")]);
  expect(code).toBe(0);
  expect(answers.filter((a) => a.id === 7).map((a) => a.result.ok)).toEqual(["a", "b"]);
  const refused = answers.filter((a) => a.id === 8);
  expect(refused).toHaveLength(1);
  expect(refused[0]!.error.message).toContain("Bay unreachable or refused");
  expect(answers.filter((a) => a.id === 9)).toEqual([{ jsonrpc: "2.0", id: 9, result: { via: "sse" } }]);
}, 30_000);
