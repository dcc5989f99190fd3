/**
 * WebSockets to servers running in a sandbox, end to end: a served Bay, the real
 * Ship image on Docker, and a real WebSocket server (tests/e2e/fixtures/ws-server.py)
 * started in the sandbox. The handshake the server sees, the subprotocol, frames
 * both ways byte for byte, close codes both ways, and the hostile cases: refusals
 * answered before any upgrade, a server that vanishes, one that floods or sends an
 * oversized message, a stop under an open socket, another owner.
 */
import { describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
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

const SERVER = readFileSync(join(import.meta.dir, "fixtures/ws-server.py"), "utf8");
const PORT = 8090;
const wsUrl = (id: string, rest: string) => `${served.http.replace(/^http/, "ws")}/v1/sandboxes/${id}/ports/${rest}`;
const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

interface Opened {
  ws: WebSocket;
  /** Messages as they arrive (text as strings, binary as Uint8Array). */
  messages: Array<string | Uint8Array>;
  closed: Promise<{ code: number; reason: string }>;
  next(): Promise<string | Uint8Array>;
}

/** Opens a WebSocket through Bay as `owner`; resolves once open (rejects on a failed handshake). */
function open(
  id: string,
  rest: string,
  opts: { owner?: string; headers?: Record<string, string>; protocols?: string[] } = {},
): Promise<Opened> {
  const ws = new WebSocket(wsUrl(id, rest), {
    headers: { "x-owner": opts.owner ?? "alice", ...opts.headers },
    ...(opts.protocols ? { protocols: opts.protocols } : {}),
  } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  const messages: Array<string | Uint8Array> = [];
  const waiting: Array<() => void> = [];
  ws.onmessage = (e) => {
    messages.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
    for (const w of waiting.splice(0)) w();
  };
  let read = 0;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (e) => {
      resolve({ code: e.code, reason: e.reason });
      for (const w of waiting.splice(0)) w();
    });
  });
  const next = async () => {
    while (read >= messages.length) {
      if (ws.readyState === WebSocket.CLOSED) throw new Error("closed before the next message");
      await new Promise<void>((r) => waiting.push(r));
    }
    return messages[read++]!;
  };
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve({ ws, messages, closed, next });
    ws.onerror = () => reject(new Error("handshake failed"));
  });
}

/** Sends a WebSocket handshake over a raw connection (`headers` override its own; null leaves one out); returns Bay's answer (status, headers, body) if it was not an upgrade. */
function handshake(
  id: string,
  rest: string,
  headers: Record<string, string | null> = {},
): Promise<{ status: number; head: string; body: string }> {
  const [host, port] = served.host.split(":");
  const all: Record<string, string | null> = {
    Host: served.host,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
    "X-Owner": "alice",
    ...headers,
  };
  const lines = [
    `GET /v1/sandboxes/${id}/ports/${rest} HTTP/1.1`,
    ...Object.entries(all)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}: ${v}`),
  ];
  return new Promise((resolve, reject) => {
    let text = "";
    const done = (s: { end(): void }) => {
      const at = text.indexOf("\r\n\r\n");
      if (at < 0) return;
      const head = text.slice(0, at);
      const status = Number(head.split(" ")[1]);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      const body = text.slice(at + 4);
      if (status === 101 || body.length >= length) {
        resolve({ status, head, body });
        s.end();
      }
    };
    void Bun.connect({
      hostname: host!,
      port: Number(port),
      socket: {
        open: (s) => void s.write(`${lines.join("\r\n")}\r\n\r\n`),
        data: (s, d) => {
          text += new TextDecoder().decode(d);
          done(s);
        },
        close: () => reject(new Error(`closed: ${text}`)),
        error: (_s, e) => reject(e),
      },
    }).catch(reject);
  });
}

async function withServer(fn: (id: string) => Promise<void>): Promise<void> {
  const id = await newSandbox(t);
  try {
    const w = await t.json("PUT", `/v1/sandboxes/${id}/filesystem/files`, { body: { path: "ws-server.py", content: SERVER } });
    expect(w.status).toBe(200);
    expect((await sh(t, id, { command: `python3 ws-server.py ${PORT}`, background: true })).status).toBe(200);
    // Up once a plain GET reaches it (its 404 for a request that is not an upgrade).
    await pollUntil(
      async () => (await fetch(`${served.http}/v1/sandboxes/${id}/ports/${PORT}/`, { headers: { "x-owner": "alice" } })).status,
      (s) => s === 404,
      30_000,
      "WebSocket server",
    );
    await fn(id);
  } finally {
    await dropSandbox(t, id);
  }
}

describe("a WebSocket to a server in the sandbox, through Bay", () => {
  test("the handshake arrives minus Bay's credentials, the server's subprotocol is the client's; frames and close codes pass both ways", async () => {
    await withServer(async (id) => {
      const c = await open(id, `${PORT}/ws/a%2Fb?x=1`, {
        headers: { cookie: "sid=secret", "x-app": "1", "x-forwarded-for": "10.1.2.3" },
        protocols: ["chat.v1", "chat.v2"],
      });
      expect(c.ws.protocol).toBe("chat.v2");
      const seen = JSON.parse((await c.next()) as string) as { path: string; headers: Record<string, string>; protocol: string };
      expect(seen.path).toBe("/ws/a%2Fb?x=1");
      expect(seen.protocol).toBe("chat.v2");
      expect(seen.headers["x-app"]).toBe("1");
      expect(seen.headers.host).toBe("127.0.0.1:8090");
      for (const gone of ["x-owner", "cookie", "authorization", "x-forwarded-for", "x-bay-nonce", "x-ship-subprotocols"]) {
        expect(seen.headers[gone]).toBeUndefined();
      }
      c.ws.send("héllo");
      expect(await c.next()).toBe("héllo");
      const bytes = randomBytes(900 * 1024);
      c.ws.send(bytes);
      const back = await c.next();
      expect(back).toBeInstanceOf(Uint8Array);
      expect(sha(back as Uint8Array)).toBe(sha(bytes));
      // The server closes with its own code and reason; the client gets them.
      c.ws.send("close:4001:bye");
      expect(await c.closed).toEqual({ code: 4001, reason: "bye" });

      // The client closes with its code; the server's answer to it comes back.
      const d = await open(id, `${PORT}/ws`);
      expect(d.ws.protocol).toBe("");
      await d.next();
      d.ws.close(4002, "later");
      expect((await d.closed).code).toBe(4002);
    });
  }, 120_000);

  test("20 MiB flooded by the server arrive whole; a message over 1 MiB closes the socket with 1009; a server that vanishes, with 1014", async () => {
    await withServer(async (id) => {
      const c = await open(id, `${PORT}/ws`);
      await c.next();
      c.ws.send(`flood:${20 * 1024 * 1024}`);
      let total = 0;
      for (;;) {
        const m = await c.next();
        if (m === "flood done") break;
        total += (m as Uint8Array).byteLength;
      }
      expect(total).toBe(20 * 1024 * 1024);
      // 100,000 one-byte messages, queued in the Ship while unacknowledged, arrive all and in order.
      c.ws.send("tiny:100000");
      let tiny = 0;
      for (;;) {
        const m = await c.next();
        if (m === "tiny done") break;
        expect((m as Uint8Array).byteLength).toBe(1);
        tiny++;
      }
      expect(tiny).toBe(100_000);
      c.ws.send(`big:${2 * 1024 * 1024}`);
      expect((await c.closed).code).toBe(1009);

      const d = await open(id, `${PORT}/ws`);
      await d.next();
      d.ws.send("drop");
      expect((await d.closed).code).toBe(1014);
      // A client message over 1 MiB is refused by Bay itself.
      const e = await open(id, `${PORT}/ws`);
      await e.next();
      e.ws.send(new Uint8Array(1024 * 1024 + 1));
      expect((await e.closed).code).toBe(1009);
      // The server still serves.
      const f = await open(id, `${PORT}/ws`);
      await f.next();
      f.ws.send("still");
      expect(await f.next()).toBe("still");
      f.ws.close();
    });
  }, 120_000);

  test("messages of exactly 1 MiB pass both ways; subprotocols the server ignores leave the client with none, as the server answered", async () => {
    await withServer(async (id) => {
      const c = await open(id, `${PORT}/ws`);
      await c.next();
      const bytes = randomBytes(1024 * 1024);
      c.ws.send(bytes);
      expect(sha((await c.next()) as Uint8Array)).toBe(sha(bytes));
      c.ws.send(`big:${1024 * 1024}`);
      expect(((await c.next()) as Uint8Array).byteLength).toBe(1024 * 1024);
      c.ws.send("x".repeat(1024 * 1024));
      expect(((await c.next()) as string).length).toBe(1024 * 1024);
      c.ws.close();

      // The 101 names the server's choice, or none at all when it chose none (Bun would answer the first offer by itself).
      const none = await handshake(id, `${PORT}/ws`, { "Sec-WebSocket-Protocol": "zz, yy" });
      expect(none.status).toBe(101);
      expect(none.head).not.toMatch(/sec-websocket-protocol/i);
      const chosen = await handshake(id, `${PORT}/ws`, { "Sec-WebSocket-Protocol": "zz, chat.v2" });
      expect(chosen.head).toMatch(/\r\nsec-websocket-protocol: chat\.v2(\r\n|$)/i);
    });
  }, 120_000);

  test("a client sending 64 MiB in a burst to a server slower than it: all of it arrives, nothing is cut (reads pause instead)", async () => {
    await withServer(async (id) => {
      const c = await open(id, `${PORT}/sink/slow`);
      await c.next();
      const chunk = new Uint8Array(1024 * 1024);
      for (let i = 0; i < 64; i++) c.ws.send(chunk);
      c.ws.send("total");
      expect(await c.next()).toBe(String(64 * 1024 * 1024));
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
      c.ws.close();
    });
  }, 120_000);

  test("an upgrade Bun would refuse (no key, a short key, version 8) is a 400 before the server sees any connection", async () => {
    await withServer(async (id) => {
      const count = async () =>
        Number(await (await fetch(`${served.http}/v1/sandboxes/${id}/ports/${PORT}/count`, { headers: { "x-owner": "alice" } })).text());
      const before = await count();
      const bads: Record<string, string | null>[] = [
        { "Sec-WebSocket-Key": null },
        { "Sec-WebSocket-Key": "c2hvcnQ=" },
        { "Sec-WebSocket-Version": "8" },
      ];
      for (const bad of bads) {
        const r = await handshake(id, `${PORT}/ws`, bad);
        expect([r.status, JSON.parse(r.body).error.code]).toEqual([400, "validation_error"]);
      }
      expect(await count()).toBe(before);
      expect((await handshake(id, `${PORT}/ws`)).status).toBe(101);
      await pollUntil(count, (n) => n === before + 1, 10_000, "the server's count");
    });
  }, 120_000);

  test("refused before any upgrade, in the error model: nothing on the port, a path the server refuses, the runtime's port, a bad subprotocol, another owner", async () => {
    await withServer(async (id) => {
      const closed = await handshake(id, "8091/ws");
      expect(closed.status).toBe(409);
      expect(JSON.parse(closed.body).error.details).toEqual({ reason: "port_closed", port: 8091 });
      const refused = await handshake(id, `${PORT}/not-ws`);
      expect(refused.status).toBe(502);
      expect(JSON.parse(refused.body).error.code).toBe("ship_error");
      expect((await handshake(id, "8123/ws")).status).toBe(400);
      const bad = await handshake(id, `${PORT}/ws`, { "Sec-WebSocket-Protocol": "a b, c" });
      expect([bad.status, JSON.parse(bad.body).error.code]).toEqual([400, "validation_error"]);
      const bobs = await handshake(id, `${PORT}/ws`, { "X-Owner": "bob" });
      expect(bobs.status).toBe(404);
      // An upgrade that goes through answers 101 with the mark and the request id.
      const ok = await handshake(id, `${PORT}/ws`);
      expect(ok.status).toBe(101);
      expect(ok.head).toMatch(/x-bay-upstream: 101/i);
      expect(ok.head).toMatch(/x-request-id: /i);
      expect(ok.head).not.toMatch(/set-cookie/i);
    });
  }, 120_000);

  test("a stop under an open socket closes it with 1011 and the reason's code; another sandbox's same port is not reached", async () => {
    await withServer(async (id) => {
      const other = await newSandbox(t);
      try {
        expect((await handshake(other, `${PORT}/ws`)).status).toBe(409);
      } finally {
        await dropSandbox(t, other);
      }
      const c = await open(id, `${PORT}/ws`);
      await c.next();
      expect((await t.json("POST", `/v1/sandboxes/${id}/stop`)).status).toBe(200);
      const end = await c.closed;
      expect(end.code).toBe(1011);
      expect(JSON.parse(end.reason).code).toBe("conflict");
    });
  }, 120_000);
});
