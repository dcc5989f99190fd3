/**
 * `bay sandbox forward` and `bay sandbox cp` against a fake Bay (review s100 INFO):
 * a redirect Bay kept under the port's path works on the forwarded origin, and a
 * download never keeps set-id bits and is private to the user until complete.
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CliIo } from "../../src/bay/cli/args.ts";
import { clientTarget } from "../../src/bay/cli/client.ts";
import { copy } from "../../src/bay/cli/copy.ts";
import { startForwarder } from "../../src/bay/cli/forward.ts";

const stops: Array<() => void> = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});
const io: CliIo = { out: () => {}, err: () => {}, env: {} };

function serve(fetch: (req: Request) => Response | Promise<Response>): string {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch });
  stops.push(() => server.stop(true));
  return `http://127.0.0.1:${server.port}`;
}

test("forward: Bay's Location under the port's path is the same path on the forwarded origin; other sites pass as they are", async () => {
  const url = serve((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/v1/sandboxes/sb-1") return Response.json({ id: "sb-1" });
    const to: Record<string, string> = {
      "/v1/sandboxes/sb-1/ports/8080/old": "/v1/sandboxes/sb-1/ports/8080/new?x=1#f",
      "/v1/sandboxes/sb-1/ports/8080/root": "/v1/sandboxes/sb-1/ports/8080",
      "/v1/sandboxes/sb-1/ports/8080/abs": `${new URL(req.url).origin}/v1/sandboxes/sb-1/ports/8080/a/b`,
      "/v1/sandboxes/sb-1/ports/8080/away": "https://example.com/v1/sandboxes/sb-1/ports/8080/x",
      "/v1/sandboxes/sb-1/ports/8080/other": "/v1/sandboxes/sb-1/ports/80800/x",
    };
    return new Response(null, { status: 302, headers: { location: to[path] ?? "/nowhere" } });
  });
  const fwd = await startForwarder(clientTarget({}, url), "sb-1", 8080, { hostname: "127.0.0.1", port: 0 }, io);
  stops.push(() => fwd.stop());
  const location = async (p: string) => (await fetch(`${fwd.url}${p}`, { redirect: "manual" })).headers.get("location");
  expect(await location("old")).toBe("/new?x=1#f");
  expect(await location("root")).toBe("/");
  expect(await location("abs")).toBe("/a/b");
  expect(await location("away")).toBe("https://example.com/v1/sandboxes/sb-1/ports/8080/x");
  expect(await location("other")).toBe("/v1/sandboxes/sb-1/ports/80800/x");
});

test("cp: a download is 0600 while written; set-id bits of the file replaced are not kept; a new file gets the umask's mode", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bay-cp-"));
  stops.push(() => rmSync(dir, { recursive: true, force: true }));
  let release = () => {};
  const url = serve(
    () =>
      new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode("first "));
            await new Promise<void>((r) => {
              release = r;
            });
            c.enqueue(new TextEncoder().encode("last"));
            c.close();
          },
        }),
      ),
  );
  const target = clientTarget({}, url);
  const dest = join(dir, "tool");
  writeFileSync(dest, "old");
  chmodSync(dest, 0o6755);
  const done = copy(target, "sb-1:tool", dest, io);
  await Bun.sleep(300);
  const part = readdirSync(dir).find((n) => n.startsWith(".bay-part-"));
  expect(part).toBeDefined();
  expect(statSync(join(dir, part!)).mode & 0o7777).toBe(0o600);
  release();
  expect(await done).toBe(0);
  expect(statSync(dest).mode & 0o7777).toBe(0o755);
  const fresh = join(dir, "fresh");
  const again = copy(target, "sb-1:tool", fresh, io);
  await Bun.sleep(100);
  release();
  expect(await again).toBe(0);
  expect(statSync(fresh).mode & 0o777).toBe(0o666 & ~process.umask());
});

test("cp: a destination that is a device or a pipe is refused, never replaced by a file (review s104 L3)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "bay-cp-"));
  stops.push(() => rmSync(dir, { recursive: true, force: true }));
  let asked = 0;
  const url = serve(() => {
    asked++;
    return new Response("content");
  });
  const fifo = join(dir, "fifo");
  Bun.spawnSync(["mkfifo", fifo]);
  const lines: string[] = [];
  const cli = { ...io, err: (l: string) => lines.push(l) };
  expect(await copy(clientTarget({}, url), "sb-1:f", fifo, cli)).toBe(1);
  expect(lines.join("\n")).toContain("not a regular file or directory");
  expect(statSync(fifo).isFIFO()).toBe(true);
  expect(readdirSync(dir)).toEqual(["fifo"]);
  expect(asked).toBe(0);
});
