/**
 * Requests for servers running in a sandbox, end to end: a served Bay, the real
 * Ship image on Docker, and a real HTTP server (tests/e2e/fixtures/port-server.py)
 * started in the sandbox as a background process. What the server receives, what
 * the client gets back, streaming both ways, and the hostile cases: a client that
 * vanishes mid-stream, a server that breaks the connection or forges headers,
 * another sandbox's port, another owner.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { pollUntil, type TestBay } from "../support/harness.ts";
import { dropSandbox, newSandbox, sh } from "./support/e2e.ts";
import type { ServedBay } from "./support/serve.ts";
import { servedE2eBay } from "./support/suite.ts";

let t: TestBay;
let served: ServedBay;
servedE2eBay((bay, s) => {
  t = bay;
  served = s;
});

const ALICE = { "x-owner": "alice" };
const SERVER = readFileSync(join(import.meta.dir, "fixtures/port-server.py"), "utf8");
const url = (id: string, rest: string) => `${served.http}/v1/sandboxes/${id}/ports/${rest}`;
const get = (id: string, rest: string, init: RequestInit = {}) =>
  fetch(url(id, rest), { ...init, headers: { ...ALICE, ...(init.headers as Record<string, string>) } });

/** Starts the fixture server in sandbox `id` on `port` (bound to `host`) and waits until it answers through Bay. */
async function startServer(id: string, port: number, host = "0.0.0.0"): Promise<void> {
  const w = await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "port-server.py", content: SERVER } });
  expect(w.status).toBe(200);
  const bg = await sh(t, id, { command: `python3 port-server.py ${port} ${host}`, background: true });
  expect(bg.status).toBe(200);
  await pollUntil(
    async () => (await get(id, `${port}/echo`)).status,
    (s) => s === 200,
    30_000,
    `server on ${port}`,
  );
}

async function withServer(fn: (id: string) => Promise<void>): Promise<void> {
  const id = await newSandbox(t);
  try {
    await startServer(id, 8080);
    await fn(id);
  } finally {
    await dropSandbox(t, id);
  }
}

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** Sends `bytes` on a fresh connection to the served Bay and returns all it answered before closing. */
function rawRequest(bytes: string): Promise<string> {
  const [host, port] = served.host.split(":");
  return new Promise((resolve, reject) => {
    let text = "";
    void Bun.connect({
      hostname: host!,
      port: Number(port),
      socket: {
        open: (s) => void s.write(bytes),
        data: (_s, d) => {
          text += new TextDecoder().decode(d);
        },
        close: () => resolve(text),
        error: (_s, e) => reject(e),
      },
    }).catch(reject);
  });
}

describe("a server in the sandbox, through Bay", () => {
  test("requests arrive as sent, minus Bay's credentials and the caller's context; answers come back as given", async () => {
    await withServer(async (id) => {
      const r = await get(id, "8080/echo/a%2Fb?x=1&y=%20", {
        headers: { "x-app": "1", cookie: "sid=secret", "x-forwarded-for": "10.1.2.3" },
      });
      expect(r.status).toBe(200);
      expect(r.headers.get("x-bay-upstream")).toBe("200");
      expect(r.headers.get("content-security-policy")).toStartWith("sandbox ");
      const seen = (await r.json()) as { method: string; path: string; headers: Record<string, string> };
      expect(seen.method).toBe("GET");
      expect(seen.path).toBe("/echo/a%2Fb?x=1&y=%20");
      expect(seen.headers.host).toBe("127.0.0.1:8080");
      expect(seen.headers["x-app"]).toBe("1");
      expect(seen.headers["x-request-id"]).toBe(r.headers.get("x-request-id")!);
      for (const gone of ["authorization", "x-owner", "cookie", "x-forwarded-for", "x-bay-nonce"])
        expect(seen.headers[gone]).toBeUndefined();

      // Bodies both ways, byte for byte: 3 MiB up, 20 MiB down.
      const up = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 255);
      const posted = await get(id, "8080/echo", { method: "POST", body: up, headers: { "content-type": "application/x-test" } });
      const echo = (await posted.json()) as { method: string; body_bytes: number; body_sha256: string; headers: Record<string, string> };
      expect(echo).toMatchObject({ method: "POST", body_bytes: up.byteLength, body_sha256: sha(up) });
      expect(echo.headers["content-type"]).toBe("application/x-test");
      const down = await get(id, `8080/big/${20 * 1024 * 1024}`);
      const bytes = new Uint8Array(await down.arrayBuffer());
      expect(bytes.byteLength).toBe(20 * 1024 * 1024);
      expect(bytes[256 * 1000 + 7]).toBe(7);

      for (const method of ["PUT", "PATCH", "DELETE"]) {
        const m = await get(id, "8080/echo", { method, body: method === "DELETE" ? undefined : "x" });
        expect(((await m.json()) as { method: string }).method).toBe(method);
      }
      // A repeated Content-Length (Bun takes "2" twice) does not reach the hop as "2, 2": the server answers.
      const dup = await rawRequest(
        `POST /v1/sandboxes/${id}/ports/8080/echo HTTP/1.1\r\nHost: ${served.host}\r\nX-Owner: alice\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      );
      expect(dup).toStartWith("HTTP/1.1 200");
      expect(dup.toLowerCase()).toContain("x-bay-upstream: 200");
      const head = await get(id, "8080/echo", { method: "HEAD" });
      expect([head.status, head.headers.get("x-bay-upstream"), (await head.arrayBuffer()).byteLength]).toEqual([200, "200", 0]);
    });
  }, 120_000);

  test("the server's statuses, redirects and compression are its own: relayed, never followed or inflated", async () => {
    await withServer(async (id) => {
      for (const status of [401, 404, 500, 503]) {
        const r = await get(id, `8080/status/${status}`);
        expect([r.status, r.headers.get("x-bay-upstream")]).toEqual([status, String(status)]);
        expect(await r.json()).toEqual({ server: "own", status });
      }
      const moved = await get(id, "8080/redirect", { redirect: "manual" });
      // The server's own path, under its port (never one of Bay's routes).
      expect([moved.status, moved.headers.get("location")]).toEqual([302, `/v1/sandboxes/${id}/ports/8080/echo?from=redirect`]);
      const zipped = await get(id, "8080/gzip", { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit);
      expect(zipped.headers.get("content-encoding")).toBe("gzip");
      expect(gunzipSync(new Uint8Array(await zipped.arrayBuffer())).toString()).toBe("compressible ".repeat(1000));
      // A client that asked for no encoding gets none.
      const plain = await get(id, "8080/gzip", { headers: { "accept-encoding": "identity" } });
      expect(plain.headers.get("content-encoding")).toBeNull();
    });
  }, 120_000);

  test("long heads (a 17 KB query, a 20 KB header: past Bun's own default) reach the server, and the runtime stays the same", async () => {
    await withServer(async (id) => {
      const [before] = await t.bay.driver.listContainers({ sandbox_id: id });
      const longQuery = await get(id, `8080/echo?${"a".repeat(17_000)}`);
      expect(longQuery.status).toBe(200);
      expect(((await longQuery.json()) as { path: string }).path.length).toBe("/echo?".length + 17_000);
      const bigHeader = await get(id, "8080/echo", { method: "POST", body: "x", headers: { "x-big": "b".repeat(20_000) } });
      expect(bigHeader.status).toBe(200);
      expect(((await bigHeader.json()) as { headers: Record<string, string> }).headers["x-big"]!.length).toBe(20_000);
      // A status no HTTP answer may have is the server's failure, not the runtime's.
      const odd = await get(id, "8080/status/600");
      expect([odd.status, ((await odd.json()) as { error: { code: string } }).error.code]).toEqual([502, "ship_error"]);
      const after = await t.bay.driver.listContainers({ sandbox_id: id });
      expect(after.map((c) => c.id)).toEqual([before!.id]);
      expect((await get(id, "8080/echo")).status).toBe(200);
    });
  }, 120_000);

  test("a server forging Ship's or Bay's headers, setting cookies or granting CORS: none of it passes, the call still works", async () => {
    await withServer(async (id) => {
      const r = await get(id, "8080/forge");
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ forged: true });
      expect(r.headers.get("x-app")).toBe("kept");
      expect(r.headers.get("x-bay-upstream")).toBe("200");
      for (const gone of ["x-ship-proof", "x-ship-upstream", "set-cookie", "access-control-allow-origin"])
        expect(r.headers.get(gone)).toBeNull();
      // The session is intact: the next call is served by the same runtime.
      expect((await get(id, "8080/echo")).status).toBe(200);
    });
  }, 120_000);

  test("a client that vanishes mid-stream: the server sees its connection end, and Bay serves the next request", async () => {
    await withServer(async (id) => {
      const ctl = new AbortController();
      const r = await get(id, "8080/endless", { signal: ctl.signal });
      const reader = r.body!.getReader();
      let got = 0;
      while (got < 4 * 1024 * 1024) got += (await reader.read()).value?.byteLength ?? 0;
      ctl.abort();
      await pollUntil(
        async () =>
          (await t.json("POST", `/v1/sandboxes/${id}/shell/exec`, { body: { command: "cat endless.log 2>/dev/null" } })).body.output,
        (o: string) => o.includes("client gone"),
        30_000,
        "the server saw its client go",
      );
      expect((await get(id, "8080/echo")).status).toBe(200);
    });
  }, 120_000);

  test("nothing on the port: 409 port_closed; a server that hangs up without answering: 502; a server bound to 127.0.0.1 is reached", async () => {
    await withServer(async (id) => {
      const closed = await get(id, "8081/");
      const body = (await closed.json()) as { error: { code: string; details: { reason: string; port: number } } };
      expect([closed.status, body.error.code, body.error.details.reason, body.error.details.port]).toEqual([
        409,
        "conflict",
        "port_closed",
        8081,
      ]);
      expect(closed.headers.get("x-bay-upstream")).toBeNull();
      const hung = await get(id, "8080/close");
      expect([hung.status, ((await hung.json()) as { error: { code: string } }).error.code]).toEqual([502, "ship_error"]);
      await startServer(id, 8082, "127.0.0.1");
      expect((await get(id, "8082/echo")).status).toBe(200);
      // The runtime's own port is refused before it is asked.
      const own = await get(id, "8123/meta");
      expect(own.status).toBe(400);
    });
  }, 120_000);

  test("a sandbox's port is its own: another sandbox, another owner and a stopped runtime do not reach the server", async () => {
    await withServer(async (id) => {
      const other = await newSandbox(t);
      try {
        // The same port in another sandbox is that sandbox's: nothing listens there.
        const there = await get(other, "8080/echo");
        expect(there.status).toBe(409);
        const bobs = await fetch(url(id, "8080/echo"), { headers: { "x-owner": "bob" } });
        expect(bobs.status).toBe(404);
        expect(bobs.headers.get("x-bay-upstream")).toBeNull();
      } finally {
        await dropSandbox(t, other);
      }
      // A stop ends the server with the runtime; the next request starts a fresh one, where nothing listens.
      expect((await t.json("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
      const after = await get(id, "8080/echo");
      expect(after.status).toBe(409);
    });
  }, 120_000);
});
