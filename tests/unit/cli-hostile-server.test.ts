/**
 * The client commands against a hostile or broken server at BAY_URL (review s100 L3,
 * L4, L6): a listing that never ends, answers too large to hold, output without
 * newlines, ids with escape sequences, a wrong-typed metrics answer, credentials in
 * the URL. Each ends with a clear error, in bounded memory, with nothing raw shown.
 */
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import type { CliIo } from "../../src/bay/cli/args.ts";
import { ClientError, clientTarget, request } from "../../src/bay/cli/client.ts";
import { streamExec } from "../../src/bay/cli/exec-stream.ts";
import { runSandbox } from "../../src/bay/cli/sandbox.ts";

const CLI = join(import.meta.dir, "../../src/bay/cli.ts");
const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function serve(fetch: (req: Request) => Response | Promise<Response>): string {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch });
  stops.push(() => server.stop(true));
  return `http://127.0.0.1:${server.port}`;
}

function io(url?: string) {
  const out: string[] = [];
  const err: string[] = [];
  const written: string[] = [];
  const cli: CliIo = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    write: (_stream, text) => written.push(text),
    env: url ? { BAY_URL: url } : {},
  };
  return { cli, out, err, written };
}

const ESC = "\x1b";
const evil = `sb1${ESC}]0;EVIL${ESC}\\${ESC}[2J`;
const sandbox = (id: string) => ({ id, status: "running", profile: `p${ESC}[31m`, created_at: "now", expires_at: null });

test("ls stops on a cursor Bay gave before, with an error", async () => {
  let pages = 0;
  const url = serve(() => {
    pages++;
    return Response.json({ items: [sandbox("a")], next_cursor: "same" });
  });
  const r = io(url);
  expect(await runSandbox(["ls"], r.cli)).toBe(1);
  expect(r.err.join("\n")).toContain("a cursor it had given before");
  expect(pages).toBeLessThanOrEqual(2);
}, 10_000);

test("ls stops after a bounded number of pages when every cursor is new", async () => {
  let pages = 0;
  const url = serve(() => {
    pages++;
    return Response.json({ items: [], next_cursor: `c${pages}` });
  });
  const r = io(url);
  expect(await runSandbox(["ls"], r.cli)).toBe(1);
  expect(r.err.join("\n")).toContain("the list did not end");
  expect(pages).toBeLessThanOrEqual(1000);
}, 30_000);

test("ls and create show a server's ids and fields without control characters", async () => {
  const url = serve((req) =>
    req.method === "POST" ? Response.json(sandbox(evil)) : Response.json({ items: [sandbox(evil)], next_cursor: null }),
  );
  const ls = io(url);
  expect(await runSandbox(["ls"], ls.cli)).toBe(0);
  const create = io(url);
  expect(await runSandbox(["create"], create.cli)).toBe(0);
  for (const line of [...ls.out, ...create.out]) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  expect(create.out).toEqual(["sb1?]0;EVIL?\\?[2J"]);
});

test("stats with a wrong-typed answer is a clear error, not a TypeError", async () => {
  const url = serve(() => Response.json({ running: true, cpu_used_pct: "NaN", cpu_count: 1 }));
  const r = io(url);
  expect(await runSandbox(["stats", "sb-1"], r.cli)).toBe(1);
  expect(r.err).toEqual(["bay: sb-1: Bay's answer is not a metrics sample"]);
});

test("a JSON answer over 64 MiB is refused, by its Content-Length or as read", async () => {
  const big = new Uint8Array(64 * 1024 * 1024 + 1).fill(32);
  for (const declared of [true, false]) {
    const url = serve(() =>
      declared
        ? new Response(big, { headers: { "content-type": "application/json" } })
        : new Response(new Blob([big]).stream(), { headers: { "content-type": "application/json" } }),
    );
    const e = (await request(clientTarget({}, url), "GET", "/v1/sandboxes").catch((x) => x)) as ClientError;
    expect(e).toBeInstanceOf(ClientError);
    expect(e.code).toBe("answer_too_large");
  }
}, 30_000);

test("exec's JSON answer (no event stream) is bounded too (review s104 M2)", async () => {
  const url = serve(
    () =>
      new Response(
        new ReadableStream({
          pull(c) {
            c.enqueue(new Uint8Array(1024 * 1024).fill(32));
          },
        }),
        { headers: { "content-type": "application/json" } },
      ),
  );
  const r = io(url);
  const e = (await streamExec(clientTarget({}, url), "/v1/sandboxes/sb-1/shell/exec", { command: "true" }, r.cli, "shell").catch(
    (x) => x,
  )) as ClientError;
  expect(e).toBeInstanceOf(ClientError);
  expect(e.code).toBe("answer_too_large");
}, 30_000);

test("exec output without newlines is written as it comes in bounded pieces, not held until the end", async () => {
  let finish = () => {};
  const url = serve(() => {
    const chunk = `event: stdout\ndata: ${JSON.stringify({ text: "A".repeat(32 * 1024) })}\n\n`;
    const stream = new ReadableStream({
      async start(c) {
        for (let i = 0; i < 16; i++) c.enqueue(new TextEncoder().encode(chunk));
        await new Promise<void>((r) => {
          finish = r;
        });
        c.enqueue(
          new TextEncoder().encode(`event: result\ndata: ${JSON.stringify({ success: true, output: "", error: "", exit_code: 0 })}\n\n`),
        );
        c.close();
      },
    });
    return new Response(stream, { headers: { "content-type": "text/event-stream" } });
  });
  const r = io();
  const done = streamExec(clientTarget({}, url), "/v1/sandboxes/sb-1/shell/exec", { command: "x" }, r.cli, "shell");
  await Bun.sleep(500);
  const early = r.written.join("").length;
  finish();
  await done;
  expect(early).toBeGreaterThan(256 * 1024);
  expect(Math.max(...r.written.map((t) => t.length))).toBeLessThanOrEqual(64 * 1024 + 32 * 1024);
  expect(r.written.join("").length + r.out.join("").length).toBe(16 * 32 * 1024);
});

test("exec prints what only the result holds once, and never the whole text twice", async () => {
  const events = (result: { output: string }) =>
    serve(
      () =>
        new Response(
          `event: stdout\ndata: {"text":"one\\ntw"}\n\nevent: result\ndata: ${JSON.stringify({ success: true, error: "", exit_code: 0, ...result })}\n\n`,
          { headers: { "content-type": "text/event-stream" } },
        ),
    );
  const more = io();
  await streamExec(clientTarget({}, events({ output: "one\ntwo\nthree\n" })), "/x", {}, more.cli, "shell");
  expect(more.out).toEqual(["one", "two", "three"]);
  const other = io();
  await streamExec(clientTarget({}, events({ output: "something else entirely" })), "/x", {}, other.cli, "shell");
  expect(other.out).toEqual(["one", "tw"]);
});

test("a URL with credentials, a query or a fragment is refused, and the secret is never shown", async () => {
  // A bare `?` or `#` too: every path would be put after it (review s104 L4).
  for (const url of [
    "http://user:s3cret@127.0.0.1:8000",
    "http://127.0.0.1:8000/?token=s3cret",
    "http://127.0.0.1:8000/#s3cret",
    "http://127.0.0.1:8000/?",
    "http://127.0.0.1:8000#",
  ]) {
    expect(() => clientTarget({}, url)).toThrow(/takes no credentials, query or fragment/);
    const r = io(url);
    expect(await runSandbox(["ls"], r.cli)).toBe(2);
    expect(r.err.join("\n")).not.toContain("s3cret");
  }
});

test("bay mcp with credentials in BAY_URL exits 2 without printing them", async () => {
  const proc = Bun.spawn(["bun", CLI, "mcp"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", BAY_URL: "http://user:s3cret@127.0.0.1:9/" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code).toBe(2);
  expect(stdout + stderr).not.toContain("s3cret");
  expect(stderr).toContain("takes no credentials");
}, 20_000);
