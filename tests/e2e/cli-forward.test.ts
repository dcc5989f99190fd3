/**
 * `bay sandbox forward` (src/bay/cli/forward.ts) run as a user runs it: a `bay`
 * process against a Bay served over HTTP on real Docker, forwarding a local port
 * to servers started in a sandbox (tests/e2e/fixtures/port-server.py and
 * ws-server.py). Pages and WebSockets at the local origin, and what the listener
 * refuses: a Host that is a domain name (DNS rebinding), another site's page,
 * an unknown sandbox or another owner's (before anything listens), bad ports.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { clientTarget } from "../../src/bay/cli/client.ts";
import { headersForBay, hostKind, parseListen, remoteUrl, siteLabel } from "../../src/bay/cli/forward-rules.ts";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { freePort, sh, withSandbox } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";
import { CLI, cliEnv } from "./support/cli.ts";

let t: TestBay;
let served: ServedBay;
servedE2eBay((bay, s) => {
  t = bay;
  served = s;
});

const fixture = (name: string) => readFileSync(join(import.meta.dir, "fixtures", name), "utf8");
const running: Subprocess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill("SIGKILL");
});

function forward(args: string[], owner = "alice") {
  const proc = Bun.spawn(["bun", CLI, "sandbox", "forward", ...args], {
    env: cliEnv(served, owner),
    stdout: "pipe",
    stderr: "pipe",
  });
  running.push(proc);
  return proc;
}

async function startServer(id: string, file: string, command: string, probe: string, ready: number): Promise<void> {
  expect((await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: file, content: fixture(file) } })).status).toBe(200);
  expect((await sh(t, id, { command, background: true })).status).toBe(200);
  await pollUntil(
    async () => (await fetch(`${served.http}/v1/sandboxes/${id}/ports/${probe}`, { headers: { "x-owner": "alice" } })).status,
    (s) => s === ready,
    30_000,
    file,
  );
}

describe("bay sandbox forward", () => {
  test("pages, bodies and WebSockets of the sandbox's servers at a local origin; Ctrl-C ends it with 130", async () => {
    await withSandbox(t, async (id) => {
      await startServer(id, "port-server.py", "python3 port-server.py 8080 0.0.0.0", "8080/echo", 200);
      await startServer(id, "ws-server.py", "python3 ws-server.py 8090", "8090/", 404);
      const local = freePort();
      const wsLocal = freePort();
      const http = forward([id, "8080", "--listen", `127.0.0.1:${local}`]);
      const ws = forward([id, "8090", "--listen", String(wsLocal)]);
      const base = `http://127.0.0.1:${local}`;
      await pollUntil(
        () =>
          fetch(`${base}/echo`).then(
            (r) => r.status,
            () => 0,
          ),
        (s) => s === 200,
        20_000,
        "forwarder",
      );
      // The path and query as sent; the page is at the root of its own origin, without Bay's sandbox CSP.
      const r = await fetch(`${base}/echo/a%2Fb?x=1`, { method: "POST", body: "hello", headers: { "x-app": "1" } });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-security-policy")).toBeNull();
      expect(r.headers.get("x-bay-upstream")).toBe("200");
      const seen = (await r.json()) as { method: string; path: string; headers: Record<string, string> };
      expect([seen.method, seen.path, seen.headers["x-app"]]).toEqual(["POST", "/echo/a%2Fb?x=1", "1"]);
      expect(seen.headers["x-owner"]).toBeUndefined();
      // A browser loading a page at an address is sent to the sandbox's own origin (no shared cookies with other local apps).
      const nav = await fetch(`${base}/echo?x=1`, {
        redirect: "manual",
        headers: { "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" },
      });
      expect([nav.status, nav.headers.get("location")]).toEqual([307, `http://${siteLabel(id)}.localhost:${local}/echo?x=1`]);
      // The same origin's page may call it; localhost by name too.
      expect((await fetch(`${base}/echo`, { headers: { origin: base, "sec-fetch-site": "same-origin" } })).status).toBe(200);
      expect((await fetch(`http://localhost:${local}/echo`)).status).toBe(200);

      await pollUntil(
        () =>
          fetch(`http://127.0.0.1:${wsLocal}/`).then(
            (x) => x.status,
            () => 0,
          ),
        (s) => s === 404,
        20_000,
        "WebSocket forwarder",
      );
      const sock = new WebSocket(`ws://127.0.0.1:${wsLocal}/ws/here`, ["chat.v2"]);
      const got: string[] = [];
      const closed = new Promise<number>((resolve) => {
        sock.onclose = (e) => resolve(e.code);
      });
      sock.onmessage = (e) => {
        got.push(String(e.data));
        if (got.length === 1) sock.send("through the forwarder");
        if (got.length === 2) sock.send("close:4005:done");
      };
      expect(await closed).toBe(4005);
      expect(JSON.parse(got[0]!).path).toBe("/ws/here");
      expect(JSON.parse(got[0]!).protocol).toBe("chat.v2");
      expect(got[1]).toBe("through the forwarder");

      // A burst faster than a slow server reads: the forwarder stops reading its client instead of cutting it.
      const sink = new WebSocket(`ws://127.0.0.1:${wsLocal}/sink/slow`);
      sink.binaryType = "arraybuffer";
      const sunk: string[] = [];
      const total = new Promise<string>((resolve, reject) => {
        sink.onmessage = (e) => {
          sunk.push(String(e.data));
          if (sunk.length === 1) {
            for (let i = 0; i < 32; i++) sink.send(new Uint8Array(1024 * 1024));
            sink.send("total");
          } else resolve(String(e.data));
        };
        sink.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
      });
      expect(await total).toBe(String(32 * 1024 * 1024));
      sink.onclose = null;
      sink.close();

      http.kill("SIGINT");
      expect(await http.exited).toBe(130);
      ws.kill("SIGTERM");
      expect(await ws.exited).toBe(143);
    });
  }, 120_000);

  test("a Host that is a domain name (DNS rebinding) gets 421 and another site's page 403, before anything reaches Bay", async () => {
    await withSandbox(t, async (id) => {
      const local = freePort();
      forward([id, "8080", "--listen", `127.0.0.1:${local}`]);
      const raw = (host: string, extra = "", path = "/echo") =>
        new Promise<string>((resolve, reject) => {
          let text = "";
          void Bun.connect({
            hostname: "127.0.0.1",
            port: local,
            socket: {
              open: (s) => void s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`),
              data: (_s, d) => {
                text += new TextDecoder().decode(d);
              },
              close: () => resolve(text.split("\r\n")[0]!),
              error: (_s, e) => reject(e),
            },
          }).catch(reject);
        });
      await pollUntil(
        () => raw(`127.0.0.1:${local}`).catch(() => ""),
        (line) => line.startsWith("HTTP/1.1"),
        20_000,
        "forwarder",
      );
      expect(await raw(`attacker.example:${local}`)).toBe("HTTP/1.1 421 Misdirected Request");
      expect(await raw(`127.0.0.1.nip.io:${local}`)).toBe("HTTP/1.1 421 Misdirected Request");
      expect(await raw(`127.0.0.1:${local}`, "Origin: https://attacker.example\r\n")).toBe("HTTP/1.1 403 Forbidden");
      expect(await raw(`127.0.0.1:${local}`, "Sec-Fetch-Site: cross-site\r\n")).toBe("HTTP/1.1 403 Forbidden");
      // A page the sandbox serves shares the forwarder's origin: no spelling of a dot segment takes it
      // out of the server's path to Bay's API (where it would list sandboxes with the caller's credentials).
      for (const path of [
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/",
        "/%2E%2E/%2e%2E/%2E%2e/.%2e/v1/sandboxes",
        "/x/..\\..\\..\\..\\..\\v1/sandboxes",
      ]) {
        expect(await raw(`127.0.0.1:${local}`, "", path)).toBe("HTTP/1.1 409 Conflict");
      }
      // The sandbox's own site is served; another sandbox's name is not.
      expect(await raw(`${siteLabel(id)}.localhost:${local}`)).toBe("HTTP/1.1 409 Conflict");
      expect(await raw(`other.localhost:${local}`)).toBe("HTTP/1.1 421 Misdirected Request");
      // Nothing listens on 8080 in this sandbox: Bay's own answer comes through.
      expect(await raw(`127.0.0.1:${local}`)).toBe("HTTP/1.1 409 Conflict");
    });
  }, 120_000);

  test("an unknown sandbox, another owner's, or a bad port: a clear error and exit before anything listens", async () => {
    await withSandbox(t, async (id) => {
      const run = async (args: string[], owner = "alice") => {
        const p = forward(args, owner);
        const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
        return { code, stderr };
      };
      const unknown = await run(["sbx_nope", "8080", "--listen", "0"]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("not_found");
      const bobs = await run([id, "8080", "--listen", "0"], "bob");
      expect(bobs.code).toBe(1);
      expect(bobs.stderr).toContain("not_found");
      for (const bad of [
        [id, "0"],
        [id, "65536"],
        [id, "http"],
        [id, "8080", "--listen", "127.0.0.1:99999"],
      ]) {
        const r = await run(bad);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("usage: bay sandbox");
      }
    });
  }, 120_000);
});

test("hosts served: addresses, localhost and the sandbox's own site, never another name; --listen forms; headers for Bay", () => {
  for (const ok of ["127.0.0.1:8080", "localhost:1", "LOCALHOST", "[::1]:8080", "10.0.0.2:80", "127.0.0.1"])
    expect(hostKind(ok, "sb-1")).toBe("address");
  for (const site of ["sb-1.localhost:8080", "SB-1.localhost"]) expect(hostKind(site, "sb-1")).toBe("site");
  for (const no of [
    null,
    "",
    "evil.example:8080",
    "127.0.0.1.nip.io",
    "localhost.evil.example",
    "[::1",
    "[::1]x",
    "1.2.3:80",
    "0x7f000001",
    "sb-2.localhost",
    "x.sb-1.localhost",
  ]) {
    expect(hostKind(no, "sb-1")).toBeNull();
  }
  expect(siteLabel("sandbox-01jabc")).toBe("sandbox-01jabc");
  expect(siteLabel("Sandbox-01JABC")).toBe("sandbox-01jabc");
  expect(siteLabel("sbx_1")).toMatch(/^s-[0-9a-f]{16}$/);
  expect(siteLabel("a.b")).not.toBe(siteLabel("a-b"));
  // A page's own credentials, cookies and network context never go to Bay; the caller's credentials do.
  const sent = headersForBay(
    new Headers({
      authorization: "Bearer page",
      "x-owner": "page",
      cookie: "other_app=1",
      "x-api-key": "k",
      "x-forwarded-for": "1.2.3.4",
      origin: "http://x",
      "sec-fetch-site": "same-origin",
      "sec-websocket-key": "k",
      "x-app": "1",
    }),
    clientTarget({}, "http://bay:8000", "tok"),
  );
  expect(sent).toEqual({ "x-app": "1", authorization: "Bearer tok" });
  expect(parseListen("3000")).toEqual({ hostname: "127.0.0.1", port: 3000 });
  expect(parseListen("0.0.0.0:3000")).toEqual({ hostname: "0.0.0.0", port: 3000 });
  expect(parseListen("[::1]:3000")).toEqual({ hostname: "::1", port: 3000 });
  expect(() => parseListen(":3000")).toThrow();
  // Whatever the local server left unresolved, Bay's URL stays under the port's path (a Bay behind a prefix too).
  for (const base of ["http://bay:8000", "https://host/bay/"]) {
    const target = clientTarget({}, base);
    const portPath = "/v1/sandboxes/sb1/ports/8080";
    const at = (path: string) => remoteUrl(target, portPath, { pathname: path, search: "?q=1" } as URL)?.href ?? null;
    expect(at("/app/x")).toBe(`${base.replace(/\/$/, "")}${portPath}/app/x?q=1`);
    expect(at("/")).toBe(`${base.replace(/\/$/, "")}${portPath}/?q=1`);
    for (const outside of [
      "/%2e%2e/%2e%2e/%2e%2e/%2e%2e",
      "/../../../../v1/sandboxes",
      "/..\\..\\..\\..\\x",
      "/%2E%2e/.%2E/../..",
      "/../8081/x",
    ]) {
      expect(at(outside)).toBeNull();
    }
  }
  expect(() => parseListen("127.0.0.1:x")).toThrow();
});
